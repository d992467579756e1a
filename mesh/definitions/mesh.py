"""The whole mesh as loaded: standards plus every domain's definitions, cross-referenced."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from mesh.definitions.binding import Binding
from mesh.definitions.entity import Entity
from mesh.definitions.feature_set import FeatureSet
from mesh.definitions.global_set import GlobalFeatureSet
from mesh.definitions.references import FeatureRef
from mesh.definitions.source import DataProduct
from mesh.definitions.standards import Standards
from mesh.definitions.training import TrainingSet
from mesh.errors import MeshError

AnyFeatureSet = FeatureSet | GlobalFeatureSet
HashMatch = Literal["current", "legacy"]

WAREHOUSE_ENV = "MESH_WAREHOUSE"  # overrides storage.warehouse of mesh.yaml


@dataclass
class MeshDefinition:
    """Definitions keyed by qualified name (``domain.name``); ``files`` says where each lives."""

    standards: Standards
    conf_dir: str = "conf"
    products: dict[str, DataProduct] = field(default_factory=dict)
    feature_sets: dict[str, FeatureSet] = field(default_factory=dict)
    global_sets: dict[str, GlobalFeatureSet] = field(default_factory=dict)
    training_sets: dict[str, TrainingSet] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)  # names whose definition failed to validate

    @property
    def warehouse(self) -> str:
        """Warehouse root: ``MESH_WAREHOUSE`` overrides ``storage.warehouse`` in mesh.yaml.

        A local path is made absolute against the working directory, as the file system
        resolves it anyway, so every path derived from it and shown to a user (a table, a
        report, a manifest) can be used from anywhere; a URI (``s3://``, ``dbfs:/``,
        ``file:``) is kept as written."""
        root = self.warehouse_as_given
        return root if ":" in root.split("/", 1)[0] else os.path.abspath(root)

    @property
    def warehouse_as_given(self) -> str:
        """The warehouse root as configured (``MESH_WAREHOUSE`` or mesh.yaml), for messages
        about the setting itself; ``warehouse`` is where it is."""
        return os.environ.get(WAREHOUSE_ENV) or self.standards.storage.warehouse

    def entity(self, name: str) -> Entity:
        try:
            return self.standards.entities[name]
        except KeyError:
            known = ", ".join(sorted(self.standards.entities)) or "none"
            raise MeshError(
                f"entity {name!r} is not registered in mesh.yaml (registered: {known})",
                entity=name,
            ) from None

    def any_set(self, qualified: str) -> AnyFeatureSet:
        found = self.feature_sets.get(qualified) or self.global_sets.get(qualified)
        if found is None:
            raise MeshError(
                f"feature set {qualified!r} is not defined; run `mesh catalog search` or check "
                f"conf/ (defined: {', '.join(sorted(self.all_sets())) or 'none'})",
                feature_set=qualified,
            )
        return found

    def binding(self, fs: AnyFeatureSet) -> Binding:
        """What ``fs`` takes from other definitions: its entity's keys and (domain sets) its
        data product's location and timestamp columns. ``MeshError`` when the entity is not
        registered or the source not defined (``load_mesh`` refuses both)."""
        entity = self.entity(fs.entity)
        if not isinstance(fs, FeatureSet):
            return Binding.of(entity)
        product = self.product(fs.source, fs.domain)
        if product is None:
            raise MeshError(
                f"feature set {fs.qualified_name}: source {fs.source!r} is not a defined data "
                "product; define it with `kind: data_product` or write domain.product",
                feature_set=fs.qualified_name,
                source=fs.source,
            )
        return Binding.of(entity, product)

    def data_hash(self, fs: AnyFeatureSet) -> str:
        """``fs``'s data hash over its own fields and its binding (``binding``)."""
        return fs.data_hash(self.binding(fs))

    def match_data_hash(self, fs: AnyFeatureSet, recorded: str | None) -> HashMatch | None:
        """Whether a data hash recorded earlier (catalog version, feature-table commit) is
        still ``fs``'s: ``"current"`` when it equals ``data_hash(fs)``; ``"legacy"`` when it
        is the hash an earlier engine recorded without the binding (``legacy_data_hash``):
        the set's own fields are unchanged, its binding was not recorded; ``None`` when the
        data definition changed, or when the earlier engine named its columns otherwise
        (a 365-day window ``_1y``, now ``_365d``): its table holds other columns."""
        if recorded is None:
            return None
        if recorded == self.data_hash(fs):
            return "current"
        if recorded == fs.legacy_data_hash() and fs.legacy_output_names() == fs.output_names():
            return "legacy"
        return None

    def all_sets(self) -> dict[str, AnyFeatureSet]:
        return {**self.feature_sets, **self.global_sets}

    def product(self, ref: str, domain: str) -> DataProduct | None:
        """A data product by ``name`` (same domain) or ``domain.name``."""
        qualified = ref if "." in ref else f"{domain}.{ref}"
        return self.products.get(qualified)

    def resolve(self, ref: FeatureRef | str) -> tuple[AnyFeatureSet, list[str]]:
        """The feature set a reference points at and the output columns it selects."""
        parsed = FeatureRef.parse(ref) if isinstance(ref, str) else ref
        fs = self.any_set(parsed.set_name)
        outputs = fs.output_names()
        if parsed.feature == "*":
            return fs, outputs
        if parsed.feature not in outputs:
            raise MeshError(
                f"feature {parsed.feature!r} is not an output of {parsed.set_name} "
                f"(outputs: {', '.join(outputs)})",
                reference=str(parsed),
            )
        return fs, [parsed.feature]

    def upstream(self, qualified: str) -> list[str]:
        """Feature sets a global feature set reads (direct inputs)."""
        gs = self.global_sets.get(qualified)
        if gs is None:
            return []
        return sorted({ref.set_name for ref in gs.input_refs().values()})

    def build_order(self) -> list[str]:
        """All feature sets, every one after the sets it reads (domain sets first)."""
        order: list[str] = sorted(self.feature_sets)
        done = set(order)
        pending = sorted(self.global_sets)
        while pending:
            ready = [g for g in pending if all(u in done for u in self.upstream(g))]
            if not ready:
                raise MeshError(
                    f"global feature sets form a cycle: {', '.join(pending)}", cycle=pending
                )
            for g in ready:
                order.append(g)
                done.add(g)
                pending.remove(g)
        return order

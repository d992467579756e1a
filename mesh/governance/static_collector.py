"""The collector static rules report into: one ``CheckResult`` per rule and subject."""

from __future__ import annotations

from typing import Any

from mesh.definitions.mesh import AnyFeatureSet, MeshDefinition
from mesh.governance.results import CheckResult, Severity


class Collector:
    """Holds the mesh and the results; rule mixins add to it."""

    def __init__(self, mesh: MeshDefinition) -> None:
        self.mesh = mesh
        self.std = mesh.standards
        self.results: list[CheckResult] = []

    def add(
        self,
        check: str,
        subject: str,
        feature: str | None,
        passed: bool,
        measured: Any,
        threshold: Any,
        message: str,
        field: str,
        severity: Severity = "error",
        file: str | None = None,
    ) -> None:
        self.results.append(
            CheckResult(
                check=check,
                subject=subject,
                feature=feature,
                passed=passed,
                measured=measured,
                threshold=threshold,
                message=message if not passed else "ok",
                file=file or self.mesh.files.get(subject),
                field=field,
                severity=severity,
            )
        )

    def effective_visibility(self, fs: AnyFeatureSet) -> str:
        return fs.metadata.visibility or self.std.access.default_visibility

    def audience(self, fs: AnyFeatureSet) -> frozenset[str] | None:
        """The domains visibility lets read ``fs`` (``None``: every domain).

        Mirrors ``mesh.catalog.access.decide``: the owning domain always reads;
        ``allowed_domains`` counts only for ``internal``. PII grants are not part of it.
        """
        visibility = self.effective_visibility(fs)
        if visibility == "public":
            return None
        if visibility == "internal":
            return frozenset({fs.domain, *fs.metadata.allowed_domains})
        return frozenset({fs.domain})

    def keys(self, entity: str) -> list[str]:
        found = self.std.entities.get(entity)
        return found.key_columns if found else []

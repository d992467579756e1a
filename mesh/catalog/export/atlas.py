"""Apache Atlas / Microsoft Purview: custom type definitions and entities (JSON).

``typedefs.json`` is an ``AtlasTypesDef`` (POST /api/atlas/v2/types/typedefs):
``mesh_feature_set`` and ``mesh_feature`` (DataSets, joined by a composition relationship),
``mesh_data_product`` and the ``mesh_feature_build`` process that carries lineage, plus
``PII``/``SENSITIVE`` classifications. ``entities.json`` is an ``AtlasEntitiesWithExtInfo``
(POST /api/atlas/v2/entity/bulk); qualified names are ``<domain>.<name>@<mesh>``.
"""

from __future__ import annotations

from typing import Any

from mesh.catalog.export import ExportInput, dumps
from mesh.definitions.feature_set import PROTECTED_PII

SET_TYPE, FEATURE_TYPE = "mesh_feature_set", "mesh_feature"
PRODUCT_TYPE, PROCESS_TYPE = "mesh_data_product", "mesh_feature_build"
_ATLAS_TYPE = {
    "feature_set": SET_TYPE,
    "global_feature_set": SET_TYPE,
    "data_product": PRODUCT_TYPE,
    "training_set": "mesh_training_set",
}


def _attr(name: str, type_name: str = "string", optional: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "typeName": type_name,
        "isOptional": optional,
        "cardinality": "SINGLE",
        "isUnique": False,
        "isIndexable": False,
    }


def typedefs() -> dict[str, Any]:
    """The custom Atlas type system of the mesh."""

    def entity(name: str, super_type: str, attrs: list[dict[str, Any]], doc: str) -> dict[str, Any]:
        return {
            "category": "ENTITY",
            "name": name,
            "description": doc,
            "typeVersion": "1.0",
            "superTypes": [super_type],
            "attributeDefs": attrs,
        }

    return {
        "classificationDefs": [
            {
                "category": "CLASSIFICATION",
                "name": "PII",
                "description": "Personal data",
                "typeVersion": "1.0",
                "superTypes": [],
                "attributeDefs": [],
                "entityTypes": [],
            },
            {
                "category": "CLASSIFICATION",
                "name": "SENSITIVE",
                "description": "Sensitive data",
                "typeVersion": "1.0",
                "superTypes": [],
                "attributeDefs": [],
                "entityTypes": [],
            },
        ],
        "entityDefs": [
            entity(
                SET_TYPE,
                "DataSet",
                [
                    _attr("domain", optional=False),
                    _attr("entity", optional=False),
                    _attr("kind"),
                    _attr("semanticVersion", optional=False),
                    _attr("deltaVersion", "long"),
                    _attr("tablePath"),
                    _attr("dataHash"),
                    _attr("metadataHash"),
                    _attr("visibility"),
                    _attr("allowedDomains", "array<string>"),
                    _attr("tags", "array<string>"),
                    _attr("publishedAt", "date"),
                ],
                "A feature set of the feature mesh (one feature table, versioned)",
            ),
            entity(
                FEATURE_TYPE,
                "DataSet",
                [
                    _attr("dataType", optional=False),
                    _attr("pii"),
                    _attr("featureKind"),
                ],
                "One feature column of a mesh feature set",
            ),
            entity(PRODUCT_TYPE, "DataSet", [_attr("domain")], "A domain's data product"),
            entity("mesh_training_set", "DataSet", [_attr("domain")], "A training set"),
            entity(PROCESS_TYPE, "Process", [], "The build of a mesh feature set"),
        ],
        "relationshipDefs": [
            {
                "category": "RELATIONSHIP",
                "name": "mesh_feature_set_features",
                "typeVersion": "1.0",
                "relationshipCategory": "COMPOSITION",
                "propagateTags": "NONE",
                "endDef1": {
                    "type": SET_TYPE,
                    "name": "features",
                    "isContainer": True,
                    "cardinality": "SET",
                    "isLegacyAttribute": False,
                },
                "endDef2": {
                    "type": FEATURE_TYPE,
                    "name": "featureSet",
                    "isContainer": False,
                    "cardinality": "SINGLE",
                    "isLegacyAttribute": False,
                },
            }
        ],
        "enumDefs": [],
        "structDefs": [],
    }


def _ref(type_name: str, qualified: str) -> dict[str, Any]:
    return {"typeName": type_name, "uniqueAttributes": {"qualifiedName": qualified}}


def entities(data: ExportInput) -> dict[str, Any]:
    """Entities of every published set, its features, its inputs and its build process."""
    suffix = f"@{data.mesh_name}"
    out: list[dict[str, Any]] = []
    guid = 0

    def add(type_name: str, attributes: dict[str, Any], **extra: Any) -> None:
        nonlocal guid
        guid -= 1
        out.append({"typeName": type_name, "guid": str(guid), "attributes": attributes, **extra})

    for entry in data.entries:
        version = data.versions.get(entry.name)
        qn = entry.name + suffix
        add(
            SET_TYPE,
            {
                "qualifiedName": qn,
                "name": entry.name,
                "description": entry.description or "",
                "owner": entry.owner or "",
                "domain": entry.domain,
                "entity": entry.entity,
                "kind": entry.kind,
                "semanticVersion": entry.semantic_version,
                "deltaVersion": version.delta_version if version else None,
                "tablePath": version.table_path if version else None,
                "dataHash": version.data_hash if version else None,
                "metadataHash": version.metadata_hash if version else None,
                "visibility": entry.visibility,
                "allowedDomains": entry.allowed_domains,
                "tags": entry.tags,
                "publishedAt": int(entry.published_at.timestamp() * 1000),
            },
        )
        for feature in entry.features:
            classes = (
                [{"typeName": feature["pii"].upper()}] if feature["pii"] in PROTECTED_PII else []
            )
            add(
                FEATURE_TYPE,
                {
                    "qualifiedName": f"{entry.name}.{feature['name']}{suffix}",
                    "name": feature["name"],
                    "description": feature.get("description") or "",
                    "dataType": str(feature.get("type")),
                    "pii": feature["pii"],
                    "featureKind": feature["kind"],
                },
                relationshipAttributes={"featureSet": _ref(SET_TYPE, qn)},
                classifications=classes,
            )
    known = {e["attributes"]["qualifiedName"] for e in out}
    for edge in data.edges:
        kind, name = edge.source.split(":", 1)
        if kind == "data_product" and name + suffix not in known:
            known.add(name + suffix)
            add(
                PRODUCT_TYPE,
                {"qualifiedName": name + suffix, "name": name, "domain": name.split(".")[0]},
            )
    targets = sorted({e.target for e in data.edges if not e.target.startswith("training_set")})
    for target in targets:
        kind, name = target.split(":", 1)
        inputs = [e.source.split(":", 1) for e in data.edges if e.target == target]
        add(
            PROCESS_TYPE,
            {
                "qualifiedName": f"build:{name}{suffix}",
                "name": f"build {name}",
                "inputs": [_ref(_ATLAS_TYPE[k], n + suffix) for k, n in inputs],
                "outputs": [_ref(_ATLAS_TYPE[kind], name + suffix)],
            },
        )
    return {"entities": out, "referredEntities": {}}


def render_atlas(data: ExportInput) -> dict[str, str]:
    """``atlas/typedefs.json`` and ``atlas/entities.json``."""
    return {"atlas/typedefs.json": dumps(typedefs()), "atlas/entities.json": dumps(entities(data))}

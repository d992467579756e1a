"""DataHub: metadata change proposals (MCPs) for ML feature tables, features and keys.

The output is the JSON list DataHub's ``file`` source ingests (``datahub ingest`` with
``source.type: file``): one ``UPSERT`` per aspect, the aspect inlined under ``aspect.json``.
Per feature set: ``mlFeatureTable`` (properties, ownership, tags), one ``mlFeature`` per
output column and one ``mlPrimaryKey`` per entity key, sources pointing at the data
products (``delta-lake`` datasets).
"""

from __future__ import annotations

from typing import Any

from mesh.catalog.export import ExportInput, dumps

PLATFORM = "urn:li:dataPlatform:feature-mesh"
# DataHub's MLFeatureDataType for each Spark type.
_TYPES = {
    "boolean": "BINARY",
    "string": "TEXT",
    "timestamp": "TIME",
    "date": "TIME",
    "double": "CONTINUOUS",
    "float": "CONTINUOUS",
    "int": "ORDINAL",
    "bigint": "ORDINAL",
}


def _mcp(entity_type: str, urn: str, aspect_name: str, aspect: dict[str, Any]) -> dict[str, Any]:
    return {
        "entityType": entity_type,
        "entityUrn": urn,
        "changeType": "UPSERT",
        "aspectName": aspect_name,
        "aspect": {"json": aspect},
    }


def feature_type(feature: dict[str, Any]) -> str:
    """DataHub data type of a feature, from its Spark type."""
    return _TYPES.get(str(feature.get("type")), "UNKNOWN")


def proposals(data: ExportInput) -> list[dict[str, Any]]:
    """Every MCP of the export, in a stable order."""
    out: list[dict[str, Any]] = []
    for entry in data.entries:
        table_urn = f"urn:li:mlFeatureTable:({PLATFORM},{entry.name})"
        sources = [
            f"urn:li:dataset:(urn:li:dataPlatform:delta-lake,{s.split(':', 1)[1]},PROD)"
            for s in entry.sources
            if s.startswith("data_product:")
        ]
        feature_urns, key_urns = [], []
        for feature in entry.features:
            urn = f"urn:li:mlFeature:({entry.name},{feature['name']})"
            feature_urns.append(urn)
            props: dict[str, Any] = {
                "description": feature.get("description") or "",
                "dataType": feature_type(feature),
                "version": {"versionTag": entry.semantic_version},
                "sources": sources,
                "customProperties": {
                    "pii": feature["pii"],
                    "kind": feature["kind"],
                    "sparkType": str(feature.get("type")),
                },
            }
            out.append(_mcp("mlFeature", urn, "mlFeatureProperties", props))
        for key, key_type in data.keys.get(entry.entity, {}).items():
            urn = f"urn:li:mlPrimaryKey:({entry.name},{key})"
            key_urns.append(urn)
            out.append(
                _mcp(
                    "mlPrimaryKey",
                    urn,
                    "mlPrimaryKeyProperties",
                    {
                        "description": f"Key of entity {entry.entity}",
                        "dataType": _TYPES.get(key_type, "UNKNOWN"),
                        "sources": sources,
                    },
                )
            )
        version = data.versions.get(entry.name)
        custom = {
            "domain": entry.domain,
            "entity": entry.entity,
            "kind": entry.kind,
            "semanticVersion": entry.semantic_version,
            "visibility": entry.visibility,
        }
        if version is not None:
            custom.update(
                {
                    "deltaVersion": str(version.delta_version),
                    "tablePath": version.table_path,
                    "dataHash": version.data_hash,
                }
            )
        out.append(
            _mcp(
                "mlFeatureTable",
                table_urn,
                "mlFeatureTableProperties",
                {
                    "description": entry.description or "",
                    "mlFeatures": feature_urns,
                    "mlPrimaryKeys": key_urns,
                    "customProperties": custom,
                },
            )
        )
        if entry.owner:
            out.append(
                _mcp(
                    "mlFeatureTable",
                    table_urn,
                    "ownership",
                    {
                        "owners": [
                            {"owner": f"urn:li:corpuser:{entry.owner}", "type": "TECHNICAL_OWNER"}
                        ]
                    },
                )
            )
        if entry.tags:
            out.append(
                _mcp(
                    "mlFeatureTable",
                    table_urn,
                    "globalTags",
                    {"tags": [{"tag": f"urn:li:tag:{t}"} for t in entry.tags]},
                )
            )
    return out


def render_datahub(data: ExportInput) -> dict[str, str]:
    """``datahub/mcps.json``."""
    return {"datahub/mcps.json": dumps(proposals(data))}

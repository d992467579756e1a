"""Open Data Contract Standard (ODCS v3.0.2): one YAML data contract per feature set.

The contract describes the feature table (keys, ``feature_ts``, ``created_ts``, features
with logical/physical types and PII classification), its owner, tags, visibility and the
quality rules the platform enforces on publish (row count, key nulls, null rate per
feature) as executable SQL checks.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from mesh.catalog.export import ExportInput

API_VERSION = "v3.0.2"
_LOGICAL = {
    "boolean": "boolean",
    "string": "string",
    "date": "date",
    "timestamp": "date",
    "int": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "tinyint": "integer",
    "double": "number",
    "float": "number",
}


def _logical(spark_type: str) -> str:
    if spark_type.startswith("decimal"):
        return "number"
    if spark_type.startswith("array"):
        return "array"
    return _LOGICAL.get(spark_type, "string")


def contract(data: ExportInput, name: str) -> dict[str, Any]:
    """The ODCS document of one published feature set."""
    entry = next(e for e in data.entries if e.name == name)
    version = data.versions.get(name)
    keys = data.keys.get(entry.entity, {})
    table = entry.name.replace(".", "__")
    properties: list[dict[str, Any]] = []
    for position, (key, key_type) in enumerate(keys.items(), start=1):
        properties.append(
            {
                "name": key,
                "logicalType": _logical(key_type),
                "physicalType": key_type,
                "primaryKey": True,
                "primaryKeyPosition": position,
                "required": True,
                "description": f"Key of entity {entry.entity}",
                "quality": [
                    {
                        "type": "sql",
                        "description": "no null keys",
                        "query": f"SELECT COUNT(*) FROM {table} WHERE {key} IS NULL",
                        "mustBe": 0,
                    }
                ],
            }
        )
    properties.append(
        {
            "name": "feature_ts",
            "logicalType": "date",
            "physicalType": "timestamp",
            "required": True,
            "description": "When the value became true",
        }
    )
    properties.append(
        {
            "name": "created_ts",
            "logicalType": "date",
            "physicalType": "timestamp",
            "description": "When the value could first be known",
        }
    )
    default_max_null = data.quality.get("max_null_rate")
    # The set's own thresholds, as published (its definition at that version), win.
    published = json.loads(version.definition_json) if version else {}
    overrides = published.get("quality") or {}
    for feature in entry.features:
        max_null = (overrides.get("max_null_rate") or {}).get(feature["name"], default_max_null)
        bounds = (overrides.get("ranges") or {}).get(feature["name"])
        spark_type = str(feature.get("type"))
        prop: dict[str, Any] = {
            "name": feature["name"],
            "logicalType": _logical(spark_type),
            "physicalType": spark_type,
            "description": feature.get("description") or "",
            "classification": feature["pii"] if feature["pii"] != "none" else "public",
            "tags": list(feature.get("tags") or []),
        }
        rules: list[dict[str, Any]] = []
        if max_null is not None:
            rules.append(
                {
                    "type": "sql",
                    "description": f"null rate at most {max_null}",
                    "query": f"SELECT AVG(CASE WHEN {feature['name']} IS NULL THEN 1.0 "
                    f"ELSE 0.0 END) FROM {table}",
                    "mustBeLessOrEqualTo": max_null,
                }
            )
        if bounds is not None and any(b is not None for b in bounds):
            rules.append(_range_rule(table, feature["name"], *bounds))
        if rules:
            prop["quality"] = rules
        properties.append(prop)
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": f"{data.mesh_name}:{entry.name}",
        "name": entry.name,
        "version": entry.semantic_version,
        "status": "active",
        "domain": entry.domain,
        "dataProduct": entry.name,
        "tenant": data.mesh_name,
        "description": {
            "purpose": entry.description or "",
            "usage": f"Point-in-time feature lookups on entity {entry.entity}",
        },
        "tags": list(entry.tags),
        "schema": [
            {
                "name": table,
                "physicalName": version.table_path if version else table,
                "physicalType": "table",
                "logicalType": "object",
                "description": entry.description or "",
                "properties": properties,
                "quality": [
                    {
                        "type": "sql",
                        "description": "at least min_rows rows",
                        "query": f"SELECT COUNT(*) FROM {table}",
                        "mustBeGreaterOrEqualTo": data.quality.get("min_rows", 1),
                    }
                ],
            }
        ],
        "customProperties": [
            {"property": "visibility", "value": entry.visibility},
            {"property": "allowedDomains", "value": list(entry.allowed_domains)},
            {"property": "entity", "value": entry.entity},
        ],
    }
    if entry.owner:
        doc["team"] = [{"username": entry.owner, "role": "owner"}]
    if version is not None:
        doc["customProperties"] += [
            {"property": "deltaVersion", "value": version.delta_version},
            {"property": "dataHash", "value": version.data_hash},
        ]
        doc["contractCreatedTs"] = version.published_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


def _range_rule(table: str, column: str, low: Any, high: Any) -> dict[str, Any]:
    """The ``data.range`` check as SQL; a bound left open (``None``) is not checked."""
    outside = [f"{column} {op} {b}" for op, b in (("<", low), (">", high)) if b is not None]
    if low is None:
        description = f"values at most {high}"
    elif high is None:
        description = f"values at least {low}"
    else:
        description = f"values within [{low}, {high}]"
    return {
        "type": "sql",
        "description": description,
        "query": f"SELECT COUNT(*) FROM {table} WHERE {' OR '.join(outside)}",
        "mustBe": 0,
    }


def render_odcs(data: ExportInput) -> dict[str, str]:
    """``odcs/<domain>.<name>.odcs.yaml`` per published feature set."""
    return {
        f"odcs/{e.name}.odcs.yaml": yaml.safe_dump(contract(data, e.name), sort_keys=False)
        for e in data.entries
    }

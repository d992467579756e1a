"""OpenLineage: one ``COMPLETE`` run event per published version and per training set.

Events are built with the ``openlineage-python`` client's own models (so they carry the
spec's schema URLs and pass its validators) and serialised with its ``Serde``. Datasets live
in the namespace ``feature-mesh://<mesh name>`` and are named ``<domain>.<name>``; each
published output carries schema, documentation, ownership and dataset-version (Delta
version) facets. The run id is the publish id (a UUID).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from mesh.catalog.export import ExportInput, dumps
from mesh.errors import CatalogError

PRODUCER = "https://github.com/feature-mesh/feature-mesh"


def _client() -> Any:
    try:
        from openlineage.client import event_v2
        from openlineage.client.generated import (
            dataset_version_dataset,
            documentation_dataset,
            ownership_dataset,
            schema_dataset,
        )
        from openlineage.client.serde import Serde
    except ModuleNotFoundError as exc:
        raise CatalogError(
            "the OpenLineage export needs the openlineage-python package; install it with "
            "`pip install 'feature-mesh[catalog]'` (or `pip install openlineage-python`)",
            format="openlineage",
            missing=exc.name,
        ) from exc
    return (
        event_v2,
        schema_dataset,
        documentation_dataset,
        ownership_dataset,
        dataset_version_dataset,
        Serde,
    )


def events(data: ExportInput) -> list[dict[str, Any]]:
    """The run events as JSON-able dicts (built and serialised by openlineage-python)."""
    ev, schema_f, doc_f, owner_f, version_f, serde = _client()
    namespace = f"feature-mesh://{data.mesh_name}"
    by_name = {e.name: e for e in data.entries}
    out = []
    for name in sorted(data.versions):
        record, entry = data.versions[name], by_name[name]
        facets = {
            "schema": schema_f.SchemaDatasetFacet(
                fields=[
                    schema_f.SchemaDatasetFacetFields(
                        name=f["name"],
                        type=str(f.get("type")),
                        description=f.get("description") or None,
                    )
                    for f in entry.features
                ],
                producer=PRODUCER,
            ),
            "documentation": doc_f.DocumentationDatasetFacet(
                description=entry.description or "", producer=PRODUCER
            ),
            "version": version_f.DatasetVersionDatasetFacet(
                datasetVersion=str(record.delta_version), producer=PRODUCER
            ),
        }
        if entry.owner:
            facets["ownership"] = owner_f.OwnershipDatasetFacet(
                owners=[owner_f.Owner(name=entry.owner, type="OWNER")], producer=PRODUCER
            )
        inputs = [
            ev.InputDataset(namespace=namespace, name=e.source.split(":", 1)[1])
            for e in data.edges
            if e.target.split(":", 1)[1] == name
        ]
        event = ev.RunEvent(
            eventType=ev.RunState.COMPLETE,
            eventTime=record.published_at.isoformat(),
            run=ev.Run(runId=str(uuid.UUID(record.publish_id))),
            job=ev.Job(namespace=namespace, name=f"publish.{name}"),
            inputs=inputs,
            outputs=[ev.OutputDataset(namespace=namespace, name=name, facets=facets)],
            producer=PRODUCER,
        )
        out.append(json.loads(serde.to_json(event)))
    for name, recorded_at, manifest in data.trainings:
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}/{recorded_at.isoformat()}")
        event = ev.RunEvent(
            eventType=ev.RunState.COMPLETE,
            eventTime=recorded_at.isoformat(),
            run=ev.Run(runId=str(run_id)),
            job=ev.Job(namespace=namespace, name=f"build_training_set.{name}"),
            inputs=[
                ev.InputDataset(namespace=namespace, name=str(pin["feature_set"]))
                for pin in manifest.get("inputs", [])
            ],
            outputs=[ev.OutputDataset(namespace=namespace, name=name)],
            producer=PRODUCER,
        )
        out.append(json.loads(serde.to_json(event)))
    return out


def render_openlineage(data: ExportInput) -> dict[str, str]:
    """``openlineage/events.json``: a JSON array of run events."""
    return {"openlineage/events.json": dumps(events(data))}

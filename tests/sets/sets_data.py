"""A tiny warehouse for the sets tests: two feature tables and a spine, hand-made.

Times are days of January 2024 (UTC). ``payments.spend`` has a late row (feature_ts Jan 5,
created Jan 8) and a TTL of 10 days; ``support.tickets`` has no TTL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mesh.definitions import MeshDefinition
from mesh.definitions.binding import published_definition

CONF = Path(__file__).parent / "conf"

SPEND_SCHEMA = (
    "customer_id bigint, feature_ts timestamp, created_ts timestamp, amount double, tx_count bigint"
)
TICKETS_SCHEMA = "customer_id bigint, feature_ts timestamp, created_ts timestamp, tickets bigint"
SPINE_SCHEMA = "customer_id bigint, label_ts timestamp, churned boolean"


def jan(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=timezone.utc)


SPEND_V1 = [
    (1, jan(1), jan(1), 10.0, 1),
    (1, jan(3), jan(3), 30.0, 3),
    (1, jan(5), jan(8), 60.0, 5),  # late: true on Jan 5, known on Jan 8
    (2, jan(2), jan(2), 20.0, 2),
]
TICKETS_V1 = [
    (1, jan(2), jan(2), 1),
    (1, jan(6), jan(6), 2),
    (2, jan(1), jan(1), 4),
]
SPINE = [
    (1, jan(2, 12), True),
    (1, jan(6), False),
    (1, jan(9), False),
    (2, jan(20), True),
    (3, jan(5), False),
]


@dataclass
class Warehouse:
    spark: Any
    mesh: MeshDefinition
    root: Path

    def write_features(
        self,
        set_name: str,
        rows: list[tuple],
        schema: str,
        semantic_version: str = "1.0.0",
        append: bool = False,
        run_id: str | None = None,
        publish: bool = True,
    ) -> int:
        """One commit to the feature table of ``set_name``, tagged like a compute job's, and
        (``publish``) the catalog's version row naming it, as ``mesh publish`` records it."""
        from mesh.sets import feature_table_location
        from mesh.storage import CommitInfo, open_table

        fs = self.mesh.any_set(set_name)
        major = int(semantic_version.split(".")[0])
        path = self.root / feature_table_location(fs.domain, fs.name, major)
        commit = CommitInfo(
            run_id=run_id or f"test-{set_name}-{semantic_version}",
            operation="compute",
            definition_hash=self.mesh.data_hash(fs),
            extra={"feature_set": set_name, "semantic_version": semantic_version},
        )
        table = open_table(self.spark, str(path))
        df = self.spark.createDataFrame(rows, schema)
        if append:
            version = table.append(df, commit)
        else:
            version = table.create(df, commit, time_column="feature_ts")
        if publish:
            self.publish_record(set_name, semantic_version, version)
        return version

    def publish_spend_2(self) -> None:
        """conf/ moves payments.spend to 2.0.0 (amounts doubled), computed and published in its
        own table (features/payments/spend/v2)."""
        spend = self.mesh.feature_sets["payments.spend"]
        self.mesh.feature_sets["payments.spend"] = spend.model_copy(update={"version": "2.0.0"})
        doubled = [(k, t, c, amount * 2, n) for k, t, c, amount, n in SPEND_V1]
        self.write_features("payments.spend", doubled, SPEND_SCHEMA, "2.0.0")

    def publish_record(self, name: str, semantic_version: str, delta_version: int) -> None:
        """The catalog's version row of a publish (what `mesh publish` records, minimal)."""
        from mesh.catalog.tables import Catalog
        from mesh.sets import feature_table_location
        from mesh.storage import CommitInfo

        definition = self.mesh.any_set(name)
        major = int(semantic_version.split(".")[0])
        row = {
            "publish_id": f"p-{name}-{semantic_version}-{delta_version}",
            "name": name,
            "domain": definition.domain,
            "semantic_version": semantic_version,
            "major": major,
            "delta_version": delta_version,
            "table_path": feature_table_location(definition.domain, definition.name, major),
            "data_hash": self.mesh.data_hash(definition),
            "metadata_hash": definition.metadata_hash(),
            "definition_json": json.dumps(
                published_definition(definition, self.mesh.binding(definition))
            ),
            "bump": "major",
            "reasons": [],
            "range_start": jan(1),
            "range_end": jan(10),
            "row_count": 4,
            "published_at": datetime.now(timezone.utc),  # newest first, as publishes land
            "publisher": f"etl@{definition.domain}",
            "run_id": "r1",
        }
        commit = CommitInfo(run_id="r1", operation="catalog_publish")
        Catalog(self.spark, str(self.root)).append("versions", [row], commit)

    def write_spine(
        self, rows: list[tuple], location: str = "products/risk/labels", fmt: str = "delta"
    ) -> str:
        from mesh.storage import CommitInfo, open_table

        df = self.spark.createDataFrame(rows, SPINE_SCHEMA)
        path = str(self.root / location)
        if fmt == "parquet":
            df.write.mode("overwrite").parquet(path)
        else:
            open_table(self.spark, path).append(df, CommitInfo(run_id="spine", operation="spine"))
        return path

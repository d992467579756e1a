"""Write the example mesh's data products (or append one day of transactions).

    ./spark-submit.sh jobs/generate_data.py --master yarn -- --warehouse s3a://b/mesh --scale large
    python jobs/generate_data.py --warehouse ./warehouse --append-day

Arguments are those of ``mesh generate``.
"""

from __future__ import annotations

import os
import sys

from mesh.cli import main


def _adopt_submitted_session() -> None:
    # Under spark-submit the master, jars and Delta extension come from spark-submit's conf;
    # creating the session from it first makes mesh.session.get_spark return this one.
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        from pyspark.sql import SparkSession

        SparkSession.builder.getOrCreate()


if __name__ == "__main__":
    _adopt_submitted_session()
    sys.exit(main(["generate", *sys.argv[1:]]))

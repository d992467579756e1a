"""The main job: the whole example mesh, from generated data products to training sets.

    ./spark-submit.sh jobs/run_mesh.py --master 'local[2]' -- --warehouse /tmp/mesh
    python jobs/run_mesh.py --warehouse ./warehouse --scale small

Arguments are those of ``mesh demo`` (``--conf``, ``--warehouse``, ``--scale``, ``--seed``,
``--customers``, ``--days``, ...).
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
    sys.exit(main(["demo", *sys.argv[1:]]))

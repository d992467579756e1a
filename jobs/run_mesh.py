"""The main job: the whole example mesh, from generated data products to training sets.

    ./spark-submit.sh jobs/run_mesh.py --master 'local[2]' -- --warehouse /tmp/mesh
    python jobs/run_mesh.py --warehouse ./warehouse --scale small

Arguments are those of ``mesh demo`` (``--conf``, ``--warehouse``, ``--scale``, ``--seed``,
``--customers``, ``--days``, ...).
"""

from __future__ import annotations

import sys

from mesh.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))

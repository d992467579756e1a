"""spark-submit entry point: ``spark-submit jobs/compute_features.py [TARGET ...] [--start ...]``.

Same arguments as ``mesh compute`` (``--conf`` and ``--warehouse`` included).
"""

import sys

from mesh.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["compute", *sys.argv[1:]]))

"""spark-submit entry point: ``spark-submit jobs/refresh_features.py [TARGET ...]``.

Same arguments as ``mesh refresh`` (``--conf`` and ``--warehouse`` included).
"""

import sys

from mesh.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["refresh", *sys.argv[1:]]))

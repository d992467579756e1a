"""``python -m mesh``: the ``mesh`` command where its script is not on ``PATH`` (a notebook's
``%sh``, a cluster's init script, a virtual environment that is not activated)."""

import sys

from mesh.cli import main

if __name__ == "__main__":
    sys.exit(main())

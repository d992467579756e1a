"""Write the example mesh's data products (or append one day of transactions).

    ./spark-submit.sh jobs/generate_data.py --master yarn -- --warehouse s3a://b/mesh --scale large
    python jobs/generate_data.py --warehouse ./warehouse --append-day

Arguments are those of ``mesh generate``.
"""

from __future__ import annotations

import sys

from mesh.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))

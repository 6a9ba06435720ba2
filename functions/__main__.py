"""``python -m functions validate ...``: see functions.cli."""

import sys

from functions.cli import main

if __name__ == "__main__":
    sys.exit(main())

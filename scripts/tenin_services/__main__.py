"""Entry point: `python3 scripts/tenin_services up|down|status` (what scripts/services
runs), or `python3 -m tenin_services ...` with scripts/ on sys.path."""

import sys
from pathlib import Path

if not __package__:
    # Run as a directory (or as this file): Python put the package's own directory first
    # on sys.path, where the package itself cannot be imported and its modules could
    # shadow real ones. Put its parent, scripts/, there instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from tenin_services.cli import main  # noqa: E402 -- needs the sys.path fix above

if __name__ == "__main__":
    sys.exit(main())

"""``python -m chatlog``: the operator CLI."""

from __future__ import annotations

import sys

from chatlog.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m sklearn_ispl``: the command line of :mod:`sklearn_ispl.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

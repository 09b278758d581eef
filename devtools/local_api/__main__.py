"""``python -m devtools.local_api --serve-url URL``: see :mod:`devtools.local_api.cli`."""

import sys

from devtools.local_api.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m deploy``: see deploy/cli.py and docs/aws.md."""

import sys

from deploy.cli import main

sys.exit(main())

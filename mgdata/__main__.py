"""``python -m mgdata`` runs the command line."""

import sys

from mgdata.cli import main

sys.exit(main())

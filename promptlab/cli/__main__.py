"""``python -m promptlab.cli`` runs the ``promptlab`` command."""

import sys

from . import main

sys.exit(main())

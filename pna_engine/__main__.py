"""``python -m pna_engine`` is the same as the ``pna-engine`` command."""

import sys

from pna_engine.cli import main

sys.exit(main())

"""``python -m ivif`` is the ``ivif`` command."""

import sys

from ivif.cli import main

sys.exit(main())

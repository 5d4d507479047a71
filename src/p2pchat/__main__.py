"""Allow ``python -m p2pchat``."""

import sys

from p2pchat.cli import main

sys.exit(main())

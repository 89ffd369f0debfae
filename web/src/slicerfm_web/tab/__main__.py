"""``python -m slicerfm_web.tab``: one tab process (started by the gateway)."""

import sys

from .app import main

sys.exit(main())

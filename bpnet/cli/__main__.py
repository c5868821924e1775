"""``python -m bpnet.cli``: the ``bpnet`` command."""

import sys

from . import main

sys.exit(main())

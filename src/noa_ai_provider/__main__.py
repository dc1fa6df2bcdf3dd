"""``python -m noa_ai_provider`` runs the ``noa-registry`` command."""

import sys

from .cli import main

sys.exit(main())

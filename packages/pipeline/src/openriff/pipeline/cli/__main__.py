"""``python -m openriff.pipeline.cli``: the ``openriff`` command (e.g. under torchrun)."""

import sys

from openriff.pipeline.cli import main

sys.exit(main())

"""Test set-up of openriff-latent-diffusion: the helper module ``toys`` is importable."""

from __future__ import annotations

import sys
from pathlib import Path

# pytest runs in importlib mode (test basenames repeat across packages), which does not put
# test folders on sys.path; the exact toy denoisers live next to the tests.
sys.path.insert(0, str(Path(__file__).parent))

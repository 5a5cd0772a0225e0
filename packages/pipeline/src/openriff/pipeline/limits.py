"""How much audio one generation may ask for, derived from this machine's memory.

Generation holds every stem it makes at once, and decoding runs over the whole signal,
so its peak memory grows with (seconds of output) x (stems made at once). A request that
would not fit is refused before any work, with the numbers, instead of growing until the
machine swaps or the process is killed.

``BYTES_PER_SECOND`` is the growth of peak memory (resident set) per second of output and
per stem when the context is held whole (every mode but ``generate`` from a file, and
arrays given to the Python API), ``STREAMED_BYTES_PER_SECOND`` when the context is read
from its file as it is needed (``openriff generate --context FILE``,
:mod:`openriff.pipeline.streamed`), and ``BASE_BYTES`` what a run holds before it (model,
libraries). Measured with ``/usr/bin/time -v openriff generate --context C --steps 2
--mix M`` and the default bundle on the 2-core CPU for a stereo context of 3 and of 30
minutes (issue 27): held whole, 1.18 and 4.60 GiB (2.1 MiB per second over 0.81 GiB);
read as needed, see ``STREAMED_BYTES_PER_SECOND``'s comment: what grows is the stem
alone. The limits use 4 MiB, 1 MiB and 1.5 GiB: other modes (candidates in a batch,
inpainting's padded copies, a stereo codec) hold more copies than these measurements. A
request is allowed ``MEMORY_SHARE`` of the machine's physical memory.
"""

from __future__ import annotations

import math
import os

SAMPLE_RATE = 48_000
BYTES_PER_SECOND = 4 * 2**20
# 1.10 GiB for 3 minutes, 1.75 GiB for 30 (0.41 MiB per second: the stem's float32
# samples, 0.37 MiB per second of stereo, and nothing of the context).
STREAMED_BYTES_PER_SECOND = 2**20
BASE_BYTES = 3 * 2**29
MEMORY_SHARE = 0.75


def memory_bytes() -> int:
    """Physical memory of this machine (8 GiB where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return 8 * 2**30


def max_seconds(stems: int = 1, per_second: float = BYTES_PER_SECOND) -> float:
    """The longest output, in seconds, that ``stems`` stems made at once may have here.

    ``per_second``: the bytes each second of each stem takes (:data:`BYTES_PER_SECOND`, or
    :data:`STREAMED_BYTES_PER_SECOND` for a context read from its file as needed).
    """
    budget = MEMORY_SHARE * memory_bytes() - BASE_BYTES
    return max(0.0, budget / (per_second * max(1, stems)))


def seconds_to_samples(seconds: float, what: str) -> int:
    """A length in seconds as samples at 48 kHz; ``ValueError`` unless finite and > 0."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {seconds}")
    check_request(seconds * SAMPLE_RATE, 1, what)
    return max(1, round(seconds * SAMPLE_RATE))


def check_request(
    samples: float, stems: int, what: str = "the request", per_second: float = BYTES_PER_SECOND
) -> None:
    """Refuse ``stems`` stems of ``samples`` samples each when they would not fit in memory.

    ``per_second`` as in :func:`max_seconds`.

    Raises:
        ValueError: naming the request, what it would need and the most this machine allows.
    """
    if stems < 1:
        raise ValueError(f"{what}: at least one stem must be generated, got {stems}")
    seconds = samples / SAMPLE_RATE
    limit = max_seconds(stems, per_second)
    if not math.isfinite(seconds) or seconds > limit:
        need = BASE_BYTES + per_second * stems * seconds
        raise ValueError(
            f"{what}: {stems} x {seconds:.4g} s of audio would need about {need / 2**30:.3g} GiB "
            f"of memory; this machine allows {limit:.0f} s per stem for {stems} stem(s) at once "
            f"({MEMORY_SHARE:.0%} of {memory_bytes() / 2**30:.0f} GiB): ask for less"
        )

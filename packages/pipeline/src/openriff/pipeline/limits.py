"""How much audio one generation may ask for, derived from this machine's memory.

Generation holds every stem it makes at once, and decoding runs over the whole signal,
so its peak memory grows with (seconds of output) x (stems made at once). A request that
would not fit is refused before any work, with the numbers, instead of growing until the
machine swaps or the process is killed.

``BYTES_PER_SECOND`` is the growth of peak memory (resident set) per second of output and
per stem, ``BASE_BYTES`` what a run holds before it (model, libraries). Measured with
``/usr/bin/time -v openriff generate --context C --steps 2`` and the default bundle on the
2-core CPU for a stereo context of 3 and of 30 minutes: 1.18 GiB and 4.60 GiB, so 2.1
MiB per second over 0.81 GiB (issue 27, with chunked loudness; 7.95 GiB for 30 minutes
before it, 7.2 MiB per second before the block-wise decoding of issue 28). The growth is
the whole-length audio the run holds at once (context, its levelled copy, the stem's
channels, the mix), not the models. The limits use 4 MiB and 1.5 GiB: other
modes (candidates in a batch, inpainting's padded copies, a stereo codec) hold more
copies than this measurement. A request is allowed ``MEMORY_SHARE`` of the machine's
physical memory.
"""

from __future__ import annotations

import math
import os

SAMPLE_RATE = 48_000
BYTES_PER_SECOND = 4 * 2**20
BASE_BYTES = 3 * 2**29
MEMORY_SHARE = 0.75


def memory_bytes() -> int:
    """Physical memory of this machine (8 GiB where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return 8 * 2**30


def max_seconds(stems: int = 1) -> float:
    """The longest output, in seconds, that ``stems`` stems made at once may have here."""
    budget = MEMORY_SHARE * memory_bytes() - BASE_BYTES
    return max(0.0, budget / (BYTES_PER_SECOND * max(1, stems)))


def seconds_to_samples(seconds: float, what: str) -> int:
    """A length in seconds as samples at 48 kHz; ``ValueError`` unless finite and > 0."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {seconds}")
    check_request(seconds * SAMPLE_RATE, 1, what)
    return max(1, round(seconds * SAMPLE_RATE))


def check_request(samples: float, stems: int, what: str = "the request") -> None:
    """Refuse ``stems`` stems of ``samples`` samples each when they would not fit in memory.

    Raises:
        ValueError: naming the request, what it would need and the most this machine allows.
    """
    if stems < 1:
        raise ValueError(f"{what}: at least one stem must be generated, got {stems}")
    seconds = samples / SAMPLE_RATE
    limit = max_seconds(stems)
    if not math.isfinite(seconds) or seconds > limit:
        need = BASE_BYTES + BYTES_PER_SECOND * stems * seconds
        raise ValueError(
            f"{what}: {stems} x {seconds:.4g} s of audio would need about {need / 2**30:.3g} GiB "
            f"of memory; this machine allows {limit:.0f} s per stem for {stems} stem(s) at once "
            f"({MEMORY_SHARE:.0%} of {memory_bytes() / 2**30:.0f} GiB): ask for less"
        )

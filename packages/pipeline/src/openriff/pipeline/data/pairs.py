"""Context/accompaniment pairs from multitrack songs (Diff-A-Riff 4.1, DiT follow-up 4.3).

For each window of a song (about 10 s, 3 s hop):

* the target is a random stem that is not vocals and not silent in the window;
* the context is the mix of a random non-empty subset of the other stems, or nothing
  (with probability ``p_no_context``, for unconditional training);
* the CLAP reference is a different segment of the same target stem that does not
  overlap the window (DiT follow-up 4.3: no leakage of the exact target), or None when the
  stem has no such audible segment;
* the target's instrument and tags travel along (bridge training).

Everything is drawn from a ``numpy.random.Generator``: the same seed gives the same
pairs. :func:`split_songs` splits train/validation by song, so no song is in both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from openriff.pipeline.data.layout import Song, StemFile
from openriff.pipeline.levels import gain_to, loudness

SAMPLE_RATE = 48_000


@dataclass(frozen=True)
class PairConfig:
    """How pairs are cut.

    Attributes:
        window: window length in samples (default 120 latent frames of 4096 samples,
            about 10.2 s at 48 kHz).
        hop: hop between windows in samples (3 s).
        reference: CLAP reference length in samples (10 s).
        p_no_context: probability of an empty context.
        silence_db: a stem is silent in a segment whose RMS is below this (dBFS).
        targets: instruments a target may be (e.g. ``("bass",)`` for a bass model, as in
            the bass-accompaniment paper); empty: any non-vocal stem.
    """

    window: int = 120 * 4096
    hop: int = 3 * SAMPLE_RATE
    reference: int = 10 * SAMPLE_RATE
    p_no_context: float = 0.1
    silence_db: float = -50.0
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.window < 1 or self.hop < 1 or self.reference < 1:
            raise ValueError("window, hop and reference must be >= 1 sample")
        if not 0.0 <= self.p_no_context <= 1.0:
            raise ValueError(f"p_no_context must be in [0, 1], got {self.p_no_context}")


@dataclass(frozen=True)
class Pair:
    """One training example, as positions into a song's stems."""

    song: str
    start: int
    length: int
    target: str
    context: tuple[str, ...]
    reference_start: int | None
    instrument: str
    tags: tuple[str, ...]
    gain_db: float = 0.0  # applied to context and target alike (levels, at preparation)
    stem_to_context_db: float | None = None  # target loudness minus context loudness


def _audible(wave: NDArray[np.float32], threshold_db: float) -> bool:
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    return rms > 0 and 20 * np.log10(rms) > threshold_db


def sample_pairs(
    song: Song,
    waves: dict[str, NDArray[np.float32]],
    config: PairConfig,
    rng: np.random.Generator,
) -> list[Pair]:
    """The pairs of one song: at most one per window.

    Windows where every stem is vocal or silent give no pair.

    Args:
        song: the song's stems and labels.
        waves: its loaded stems (:func:`~openriff.pipeline.data.layout.load_stems`), aligned.
        config: windowing and probabilities.
        rng: the randomness (seeded by the caller).
    """
    stems: dict[str, StemFile] = {s.name: s for s in song.stems if s.name in waves}
    if not stems:
        return []
    length = min(w.shape[0] for w in waves.values())
    pairs = []
    for start in range(0, max(0, length - config.window) + 1, config.hop):
        stop = start + config.window
        if stop > length:
            break
        eligible = [
            name
            for name, stem in stems.items()
            if not stem.vocal
            and (not config.targets or stem.instrument in config.targets)
            and _audible(waves[name][start:stop], config.silence_db)
        ]
        if not eligible:
            continue
        target = eligible[int(rng.integers(len(eligible)))]
        others = [n for n in stems if n != target]
        context: tuple[str, ...] = ()
        if others and rng.random() >= config.p_no_context:
            size = int(rng.integers(1, len(others) + 1))
            context = tuple(sorted(rng.choice(others, size=size, replace=False).tolist()))
        pairs.append(
            Pair(
                song=song.name,
                start=start,
                length=config.window,
                target=target,
                context=context,
                reference_start=_reference_start(waves[target], start, stop, config, rng),
                instrument=stems[target].instrument,
                tags=stems[target].tags,
            )
        )
    return pairs


def _reference_start(
    wave: NDArray[np.float32], start: int, stop: int, config: PairConfig, rng: np.random.Generator
) -> int | None:
    """A random audible segment of ``wave`` that does not overlap ``[start, stop)``."""
    size = config.reference
    last = wave.shape[0] - size
    if last < 0:
        return None
    step = max(1, size // 4)
    candidates = [
        s
        for s in range(0, last + 1, step)
        if (s + size <= start or s >= stop) and _audible(wave[s : s + size], config.silence_db)
    ]
    if not candidates:
        return None
    return int(candidates[int(rng.integers(len(candidates)))])


def render_pair(
    pair: Pair, waves: dict[str, NDArray[np.float32]], reference: int
) -> tuple[NDArray[np.float32] | None, NDArray[np.float32], NDArray[np.float32] | None]:
    """``(context mix or None, target, reference segment or None)`` audio of a pair.

    The context and the target carry the pair's ``gain_db``; the reference does not (CLAP
    embeddings are unit-norm).
    """
    window = slice(pair.start, pair.start + pair.length)
    gain = np.float32(10 ** (pair.gain_db / 20))
    target = waves[pair.target][window] * gain if pair.gain_db else waves[pair.target][window]
    context = None
    if pair.context:
        context = np.sum([waves[name][window] for name in pair.context], axis=0).astype(np.float32)
        if pair.gain_db:
            context = context * gain
    segment = None
    if pair.reference_start is not None:
        segment = waves[pair.target][pair.reference_start : pair.reference_start + reference]
    return context, target, segment


def level_pair(
    pair: Pair,
    waves: dict[str, NDArray[np.float32]],
    context_lufs: float,
    augment_db: float,
    rng: np.random.Generator,
) -> Pair:
    """``pair`` with its level: the gain that brings its context to ``context_lufs``.

    The gain is drawn within +/- ``augment_db`` of that (level augmentation); the pair also
    records its target's loudness relative to its context. A pair without a context is
    levelled as if the mix of all the other stems were its context, so its target sits
    where it would beside one.
    """
    window = slice(pair.start, pair.start + pair.length)
    names = pair.context or tuple(n for n in waves if n != pair.target)
    mix = np.sum([waves[name][window] for name in names], axis=0) if names else None
    gain = 0.0 if mix is None else gain_to(mix, context_lufs)
    gain += float(rng.uniform(-augment_db, augment_db)) if augment_db > 0 else 0.0
    ratio = None
    if pair.context and mix is not None:  # the mix is the context itself here
        ratio = loudness(waves[pair.target][window]) - loudness(mix)
        ratio = round(ratio, 3) if np.isfinite(ratio) else None
    return replace(pair, gain_db=round(gain, 3), stem_to_context_db=ratio)


def split_songs(
    songs: Sequence[Song], validation: float = 0.1, seed: int = 0
) -> tuple[list[Song], list[Song]]:
    """Split songs into train and validation sets (by song, reproducibly).

    A song's side depends only on its name and ``seed`` (a hash), so adding songs to a
    data set never moves existing ones across the split.
    """
    if not 0.0 <= validation < 1.0:
        raise ValueError(f"validation must be in [0, 1), got {validation}")
    train: list[Song] = []
    held: list[Song] = []
    for song in songs:
        digest = hashlib.sha256(f"{seed}:{song.name}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "little") / 2**64
        (held if fraction < validation else train).append(song)
    return train, held

"""Real compositions offline: music21's bundled corpus, arranged for a band, as MIDI files.

``openriff data corpus --out MIDI`` exports the multi-part scores of music21's corpus
(string quartets, madrigals, Renaissance polyphony, ...) to MIDI for ``openriff data
render``. Each piece is arranged so that it has a bass line to learn and to evaluate: its
lowest part becomes the ``bass`` (General MIDI program 32, moved by octaves into the bass
register), and every other part draws one of :data:`UPPER_PROGRAMS` (piano, organ,
strings, woodwinds, guitar, brass), seeded per piece.

Bach is never exported: his chorales are reserved for independent evaluation, so no
OpenRiff model may train, tune or validate on them, and the whole ``bach`` collection is
left out (:data:`EXCLUDED`) so that none can slip in under another name. Pieces are split
into ``train`` and ``validation`` by a hash of their corpus path (:func:`piece_split`):
the split never depends on which other pieces are present.

music21 is the optional extra ``openriff-pipeline[corpus]``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pretty_midi

# Collections of multi-part scores (music21's corpus folder names).
COLLECTIONS = (
    "beethoven", "haydn", "josquin", "monteverdi", "mozart", "palestrina", "schumann_clara",
    "schumann_robert", "trecento",
)  # fmt: skip
EXCLUDED = frozenset({"bach"})
BASS_PROGRAM = 32
# Piano, church organ, string ensemble, flute, oboe, clarinet, nylon guitar, brass section.
UPPER_PROGRAMS = (0, 19, 48, 73, 68, 71, 24, 61)
# The bass line's median pitch is moved by octaves into [BASS_LOW, BASS_LOW + 12).
BASS_LOW = 36
SPLITS = ("train", "validation", "all")
SKIPPED = "skipped.json"  # in the export folder: pieces skipped, with the reason


@dataclass
class CorpusReport:
    """Pieces written, kept from an earlier run, and skipped with the reason."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _music21() -> None:
    try:
        import music21  # noqa: F401
    except ImportError:
        raise ImportError(
            "the music21 corpus needs music21: pip install 'openriff-pipeline[corpus]'"
        ) from None


def piece_name(path: Path) -> str:
    """``collection/.../piece`` relative to music21's corpus folder, without suffix."""
    parts = Path(path).with_suffix("").parts
    return "/".join(parts[parts.index("corpus") + 1 :]) if "corpus" in parts else Path(path).stem


def piece_split(name: str, validation: float = 0.2, seed: int = 0) -> str:
    """``train`` or ``validation`` for a piece, from a hash of its name and ``seed``."""
    if not 0.0 <= validation < 1.0:
        raise ValueError(f"validation must be in [0, 1), got {validation}")
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return "validation" if int.from_bytes(digest[:8], "little") / 2**64 < validation else "train"


def corpus_pieces(
    collections: Sequence[str] = COLLECTIONS,
    *,
    split: str = "all",
    validation: float = 0.2,
    seed: int = 0,
) -> list[Path]:
    """The corpus files of ``collections`` in ``split``, sorted; never Bach's."""
    _music21()
    from music21 import corpus

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    asked = set(collections)
    if asked & EXCLUDED:
        raise ValueError(
            "Bach's chorales are reserved for independent evaluation: the bach collection "
            "is never exported"
        )
    pieces: dict[str, Path] = {}
    # Some pieces come in two encodings (e.g. .mxl and .krn): one file per piece.
    for path in sorted(Path(p) for p in corpus.getPaths()):
        name = piece_name(path)
        collection = name.split("/", 1)[0]
        if collection in EXCLUDED or collection not in asked or name in pieces:
            continue
        if split == "all" or piece_split(name, validation, seed) == split:
            pieces[name] = path
    return [pieces[name] for name in sorted(pieces)]


def arrange(midi: pretty_midi.PrettyMIDI, rng: np.random.Generator) -> pretty_midi.PrettyMIDI:
    """The lowest part as a bass (program 32, bass register), the others on random programs.

    Raises:
        ValueError: fewer than two parts with notes.
    """
    parts = [i for i in midi.instruments if i.notes and not i.is_drum]
    if len(parts) < 2:
        raise ValueError(f"{len(parts)} part(s) with notes, need 2")
    medians = [float(np.median([n.pitch for n in part.notes])) for part in parts]
    low = int(np.argmin(medians))
    shift = 12 * int(np.ceil((BASS_LOW - medians[low]) / 12))  # median into [36, 48)
    for note in parts[low].notes:
        note.pitch = int(np.clip(note.pitch + shift, 0, 127))
    for k, part in enumerate(parts):
        part.program = BASS_PROGRAM if k == low else int(rng.choice(UPPER_PROGRAMS))
        part.name = "bass" if k == low else part.name
    midi.instruments = parts
    return midi


def export_piece(path: Path, target: Path, seed: int = 0) -> Path:
    """One corpus piece, arranged, as a MIDI file at ``target`` (written atomically)."""
    import pretty_midi
    from music21 import corpus
    from music21.stream import Opus

    from openriff.latent_diffusion.files import write_atomic

    name = piece_name(path)
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))

    score = corpus.parse(str(path))
    if isinstance(score, Opus):
        # music21 writes an opus as one MIDI file per score beside ``fp``; which of its
        # scores makes "the piece" is not ours to guess.
        raise ValueError(f"an opus of {len(score.scores)} scores, not one piece")

    def write(tmp: str) -> None:
        score.write("midi", fp=tmp)
        arrange(pretty_midi.PrettyMIDI(tmp), rng).write(tmp)

    write_atomic(target, write, overwrite=False)
    return target


def export_corpus(
    out: str | os.PathLike[str],
    collections: Sequence[str] = COLLECTIONS,
    *,
    split: str = "all",
    validation: float = 0.2,
    pieces: int | None = None,
    seed: int = 0,
) -> CorpusReport:
    """Export ``collections``' pieces in ``split`` as arranged MIDI files under ``out``.

    Files already there are kept (an interrupted export resumes); pieces music21 cannot
    parse or with fewer than two parts are reported and skipped. The skipped pieces and
    their reasons are kept in ``out/skipped.json``, so that a resumed export reports them
    again without parsing them again (large scores take seconds each); delete that file
    to try them anew.
    """
    from openriff.latent_diffusion.files import writer_lock

    root = Path(out)
    report = CorpusReport()
    if not 0.0 <= validation < 1.0:  # checked before the corpus is listed (minutes)
        raise ValueError(f"validation must be in [0, 1), got {validation}")
    if pieces is not None and pieces < 1:
        raise ValueError(f"pieces must be >= 1 (None: all), got {pieces}")
    chosen = corpus_pieces(collections, split=split, validation=validation, seed=seed)
    with writer_lock(root):
        known = _skipped_before(root / SKIPPED)
        try:
            for path in chosen:
                if pieces is not None and len(report.written) + len(report.kept) >= pieces:
                    break
                name = piece_name(path)
                target = root / f"{name}.mid"
                if target.is_file():
                    report.kept.append(target)
                    continue
                if name in known:
                    report.skipped.append(f"{name}: {known[name]} (skipped before)")
                    continue
                try:
                    report.written.append(export_piece(path, target, seed))
                except Exception as error:  # music21 raises many kinds on scores it cannot read
                    known[name] = f"{type(error).__name__}: {error}"
                    report.skipped.append(f"{name}: {known[name]}")
        finally:  # an interrupted export keeps what it learnt
            if known:
                from openriff.latent_diffusion.files import write_atomic

                text = json.dumps(dict(sorted(known.items())), indent=1) + "\n"
                write_atomic(root / SKIPPED, lambda tmp: Path(tmp).write_text(text))
    return report


def _skipped_before(path: Path) -> dict[str, str]:
    """The pieces an earlier export skipped, by name; a damaged list is started afresh."""
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(known, dict):
        return {}
    return {k: v for k, v in known.items() if isinstance(k, str) and isinstance(v, str)}

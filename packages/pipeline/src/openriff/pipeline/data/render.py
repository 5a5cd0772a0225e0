"""MIDI files rendered into multitrack songs, as Slakh2100 was made (Manilow et al., 2019).

Each MIDI file (parsed with pretty-midi) becomes one song in the generic layout: its
instruments are grouped into classes by General MIDI program family (:data:`GM_CLASSES`;
channel 10 is ``drums``), every class gets one program drawn at random from its family for
this song (velocities, pedals and bends kept), and each class is rendered on its own by
FluidSynth with a General MIDI SoundFont into one 48 kHz stem. ``song.json`` gives the
tempo (and every tempo change), the time signatures, the key when the file says it, and
every stem's program and notes. Stems are scaled by one common gain so that neither any
stem nor their mix comes near full scale.

FluidSynth is the ``fluidsynth`` program (Debian: ``apt-get install fluidsynth
fluid-soundfont-gm``); the SoundFont is ``--soundfont`` or the first of
:data:`SOUNDFONTS` present.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pretty_midi

SAMPLE_RATE = 48_000
SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)
MIDI_SUFFIXES = (".mid", ".midi")
# General MIDI program families (first program, last program, class), as Slakh groups them.
GM_CLASSES: tuple[tuple[int, int, str], ...] = (
    (0, 7, "piano"),
    (8, 15, "chromatic percussion"),
    (16, 23, "organ"),
    (24, 31, "guitar"),
    (32, 39, "bass"),
    (40, 45, "strings"),
    (46, 46, "harp"),
    (47, 47, "percussive"),  # timpani
    (48, 51, "strings"),  # ensembles
    (52, 54, "voice"),  # choir aahs, voice oohs, synth voice
    (55, 55, "sound effects"),  # orchestra hit
    (56, 63, "brass"),
    (64, 79, "woodwinds"),  # reeds and pipes
    (80, 87, "synth lead"),
    (88, 95, "synth pad"),
    (96, 103, "sound effects"),
    (104, 111, "ethnic"),
    (112, 119, "percussive"),
    (120, 127, "sound effects"),
)
VOCAL_CLASSES = frozenset({"voice"})
DRUMS = "drums"
# Shorter notes are dropped: inaudible, and FluidSynth's file renderer never ends on some
# files with zero-length notes (music21's exports have them).
MIN_NOTE_SECONDS = 0.001
# Release tails kept after the last note, and how long FluidSynth may take beyond 10 s plus
# the song's length before the song is given up.
TAIL_SECONDS = 3.0
# Headroom of the loudest stem and of the mix after rendering (-1 dBFS).
PEAK = 10 ** (-1.0 / 20)


def program_class(program: int, *, is_drum: bool = False) -> str:
    """The class of a General MIDI program (0-127), or ``drums`` for channel 10."""
    if is_drum:
        return DRUMS
    for first, last, name in GM_CLASSES:
        if first <= program <= last:
            return name
    raise ValueError(f"MIDI program must be in [0, 127], got {program}")


def class_programs(name: str) -> list[int]:
    """The programs a class's stem may be rendered with."""
    if name == DRUMS:
        return [0]
    programs = [p for first, last, n in GM_CLASSES if n == name for p in range(first, last + 1)]
    if not programs:
        raise ValueError(f"unknown instrument class {name!r}")
    return programs


@dataclass(frozen=True)
class RenderConfig:
    """How songs are rendered.

    Attributes:
        soundfont: a General MIDI SoundFont (.sf2), or None for the first of
            :data:`SOUNDFONTS` present.
        random_programs: draw each class's program from its family (Slakh); False keeps
            each instrument's own program.
        min_notes: instruments with fewer notes are left out.
        max_seconds: songs are cut to this length (None: whole).
    """

    soundfont: Path | None = None
    random_programs: bool = True
    min_notes: int = 1
    max_seconds: float | None = None


@dataclass
class RenderReport:
    """Songs written, kept from an earlier run, and skipped with the reason."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def find_soundfont(soundfont: Path | None) -> Path:
    """The SoundFont to use; ``FileNotFoundError`` says how to get one."""
    if soundfont is not None:
        if not Path(soundfont).is_file():
            raise FileNotFoundError(f"SoundFont {soundfont} not found")
        return Path(soundfont)
    for path in SOUNDFONTS:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "no General MIDI SoundFont found: install one (Debian: apt-get install "
        "fluid-soundfont-gm) or pass --soundfont FILE.sf2"
    )


def fluidsynth_program() -> str:
    """The ``fluidsynth`` executable; ``FileNotFoundError`` says how to install it."""
    program = shutil.which("fluidsynth")
    if program is None:
        raise FileNotFoundError(
            "the fluidsynth program is not installed (Debian: apt-get install fluidsynth "
            "fluid-soundfont-gm; macOS: brew install fluid-synth)"
        )
    return program


def synthesize(midi: pretty_midi.PrettyMIDI, soundfont: Path) -> NDArray[np.float32]:
    """``[2, S]`` float audio of ``midi`` at 48 kHz (FluidSynth, no reverb or chorus)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="openriff-render-") as tmp:
        mid, wav = Path(tmp) / "stem.mid", Path(tmp) / "stem.wav"
        midi.write(str(mid))
        command = [
            fluidsynth_program(), "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5",
            "-r", str(SAMPLE_RATE), "-O", "float", "-T", "wav", "-F", str(wav),
            str(soundfont), str(mid),
        ]  # fmt: skip
        seconds = midi.get_end_time() + TAIL_SECONDS
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, check=False, timeout=10 + seconds
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"fluidsynth did not finish within {10 + seconds:.0f} s") from None
        if done.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed: {done.stderr.strip()[:200]}")
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, not {SAMPLE_RATE}")
    return np.ascontiguousarray(audio.T[:, : round(seconds * SAMPLE_RATE)])


def class_midis(
    midi: pretty_midi.PrettyMIDI, config: RenderConfig, rng: np.random.Generator
) -> dict[str, tuple[pretty_midi.PrettyMIDI, int]]:
    """One MIDI per class (same tempo map) with its instruments, and the program drawn."""
    import copy

    groups: dict[str, list[pretty_midi.Instrument]] = {}
    for instrument in midi.instruments:
        instrument.notes = [n for n in instrument.notes if n.end - n.start >= MIN_NOTE_SECONDS]
        if len(instrument.notes) >= config.min_notes:
            name = program_class(instrument.program, is_drum=instrument.is_drum)
            groups.setdefault(name, []).append(instrument)
    out = {}
    for name in sorted(groups):
        stem = copy.deepcopy(midi)
        stem.instruments = copy.deepcopy(groups[name])
        program = groups[name][0].program if not groups[name][0].is_drum else 0
        if config.random_programs and name != DRUMS:
            program = int(rng.choice(class_programs(name)))
        for instrument in stem.instruments:
            if not instrument.is_drum and config.random_programs:
                instrument.program = program
        out[name] = (stem, program)
    return out


def _notes(midi: pretty_midi.PrettyMIDI) -> list[dict[str, float]]:
    notes = [n for i in midi.instruments for n in i.notes]
    return [
        {"start": round(n.start, 4), "end": round(n.end, 4), "pitch": n.pitch,
         "velocity": n.velocity}
        for n in sorted(notes, key=lambda n: (n.start, n.pitch))
    ]  # fmt: skip


def song_metadata(
    midi: pretty_midi.PrettyMIDI, source: str, soundfont: Path, stems: dict[str, Any]
) -> dict[str, Any]:
    """``song.json`` content: tempo map, time signatures, key, stems."""
    import pretty_midi

    times, tempi = midi.get_tempo_changes()
    changes = [[round(float(t), 4), round(float(b), 3)] for t, b in zip(times, tempi, strict=True)]
    meta: dict[str, Any] = {
        "title": Path(source).stem,
        "source": source,
        "generator": "openriff.pipeline.data.render",
        "soundfont": soundfont.name,
        "sample_rate": SAMPLE_RATE,
        "tempo": round(float(tempi[0]), 3) if len(tempi) else 120.0,
        "tempi": changes,
        "time_signatures": [
            [round(ts.time, 4), ts.numerator, ts.denominator]
            for ts in midi.time_signature_changes
        ],
        "stems": stems,
    }  # fmt: skip
    if midi.key_signature_changes:
        meta["key"] = pretty_midi.key_number_to_key_name(midi.key_signature_changes[0].key_number)
    return meta


def render_song(
    path: Path, folder: Path, config: RenderConfig, rng: np.random.Generator, source: str
) -> Path:
    """Render one MIDI file into ``folder`` (generic layout), atomically.

    Raises:
        ValueError: the file is not usable MIDI, or has fewer than two instrument classes.
    """
    import pretty_midi
    import soundfile as sf

    from openriff.latent_diffusion.files import atomic_directory

    soundfont = find_soundfont(config.soundfont)
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido and pretty-midi raise many kinds on bad files
        raise ValueError(f"not a readable MIDI file ({type(error).__name__}: {error})") from None
    if config.max_seconds is not None:
        _cut(midi, config.max_seconds)
    stems = class_midis(midi, config, rng)
    if len(stems) < 2:
        raise ValueError(f"{len(stems)} instrument class(es) with notes, need 2")
    audio = {name: synthesize(stem, soundfont) for name, (stem, _) in stems.items()}
    length = max(a.shape[1] for a in audio.values())
    audio = {k: np.pad(a, ((0, 0), (0, length - a.shape[1]))) for k, a in audio.items()}
    peak = max(
        float(np.abs(sum(audio.values())).max()), *(float(np.abs(a).max()) for a in audio.values())
    )
    gain = np.float32(PEAK / peak) if peak > 0 else np.float32(1.0)
    entries = {
        f"{_file(name)}.wav": {
            "instrument": name, "tags": [name, pretty_midi.program_to_instrument_name(program)
                                         if name != DRUMS else "drum kit"],
            "vocal": name in VOCAL_CLASSES, "program": program, "notes": _notes(stem),
        }
        for name, (stem, program) in stems.items()
    }  # fmt: skip
    with atomic_directory(folder, overwrite=False) as tmp:
        for name, wave in audio.items():
            sf.write(tmp / f"{_file(name)}.wav", (wave * gain).T, SAMPLE_RATE, subtype="PCM_24")
        meta = song_metadata(midi, source, soundfont, entries)
        (tmp / "song.json").write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def _file(name: str) -> str:
    return name.replace(" ", "_")


def _cut(midi: pretty_midi.PrettyMIDI, seconds: float) -> None:
    for instrument in midi.instruments:
        instrument.notes = [n for n in instrument.notes if n.start < seconds]
        for note in instrument.notes:
            note.end = min(note.end, seconds)


def midi_files(root: Path) -> list[Path]:
    """The MIDI files under ``root``, sorted."""
    # Dot files are another writer's temporary files (write_atomic), never pieces.
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in MIDI_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )  # fmt: skip


def song_folder_name(index: int, path: Path) -> str:
    """``song_00012_<name>``: sortable, stable for a given file list, file-system safe."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)[:60]
    return f"song_{index:05d}_{safe}"


def render_dataset(
    midi_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: RenderConfig,
    *,
    songs: int | None = None,
    seed: int = 0,
    files: Sequence[Path] | None = None,
) -> RenderReport:
    """Render the MIDI files under ``midi_root`` into ``out`` (generic layout), resumably.

    A song's programs depend only on ``seed`` and the file's path relative to the root, so
    an interrupted run resumes with the same songs; songs already written are kept. Bad
    files are reported and skipped.
    """
    from openriff.latent_diffusion.files import writer_lock

    root, target = Path(midi_root), Path(out)
    if songs is not None and songs < 1:
        raise ValueError(f"songs must be >= 1 (None: all), got {songs}")
    if config.max_seconds is not None and not config.max_seconds > 0:  # NaN too
        raise ValueError(f"max_seconds must be > 0 (None: whole songs), got {config.max_seconds}")
    if not root.is_dir():
        raise FileNotFoundError(f"MIDI folder {root} is not a folder")
    find_soundfont(config.soundfont)
    fluidsynth_program()
    paths = list(files) if files is not None else midi_files(root)
    if not paths:
        raise ValueError(f"no MIDI files (.mid, .midi) under {root}")
    report = RenderReport()
    with writer_lock(target):
        for index, path in enumerate(paths):
            if songs is not None and len(report.written) + len(report.kept) >= songs:
                break
            folder = target / song_folder_name(index, path)
            if (folder / "song.json").is_file():
                report.kept.append(folder)
                continue
            source = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            digest = hashlib.sha256(f"{seed}:{source}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            try:
                report.written.append(render_song(path, folder, config, rng, source))
            except (ValueError, RuntimeError) as error:
                report.skipped.append(f"{source}: {error}")
    return report

"""What the web UI does, without the web: a request in, files out, over the Python API.

:class:`Studio` holds one loaded pipeline (a bundle is loaded once per process) and turns a
:class:`Request` (the page's controls) into one call of
:class:`~openriff.pipeline.generation.pipeline.AccompanimentPipeline`'s methods, through
:data:`MODES`, a registry of short functions that only map controls to arguments. The
results are written as the CLI writes them (stems and mixes as WAV and FLAC, the
spectrogram PNG of ``--plot``, the settings sidecar) into a fresh folder per run. Uploads
are checked for size and length first; a run can be cancelled between sampling steps.
Every refusal is a :class:`ValueError` with the library's one-line message.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from openriff.pipeline.audio_io import AudioInput, audio_writer, mix, plot_writer, write_together
from openriff.pipeline.generation.options import RECOMMENDABLE, Generation, Sampling
from openriff.pipeline.generation.pipeline import AccompanimentPipeline

MAX_UPLOAD_BYTES = 200 * 2**20  # about 20 minutes of 48 kHz 24-bit stereo WAV
MAX_UPLOAD_SECONDS = 600.0
MAX_CANDIDATES = 4  # players side by side

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class Cancelled(Exception):
    """The run was cancelled (:meth:`Studio.cancel`)."""


@dataclass(frozen=True)
class Request:
    """The page's controls. Paths are uploads; None or "" means not given.

    Attributes:
        mode: a key of :data:`MODES`.
        context: the music to accompany.
        stem: the stem to inpaint or vary.
        prompt: text for the CLAP condition.
        reference: a recording for the CLAP condition.
        duration: seconds to generate without a context.
        start: inpainting region start (seconds).
        end: inpainting region end (seconds).
        strength: share of the schedule a variation runs again.
        bars: loop length in bars.
        bpm: loop tempo.
        points: interpolation points.
        start_prompt: interpolation start (text); ``start_reference`` instead.
        end_prompt: interpolation end (text); ``end_reference`` instead.
        start_reference: interpolation start recording.
        end_reference: interpolation end recording.
        parts: a song's prompts, one per part.
        options: :class:`~openriff.pipeline.generation.options.Sampling` options.
    """

    mode: str = "generate"
    context: str | None = None
    stem: str | None = None
    prompt: str | None = None
    reference: str | None = None
    duration: float | None = None
    start: float = 0.0
    end: float = 1.0
    strength: float = 0.5
    bars: int = 4
    bpm: float = 120.0
    points: int = 3
    start_prompt: str | None = None
    end_prompt: str | None = None
    start_reference: str | None = None
    end_reference: str | None = None
    parts: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """The files of one run, and its settings."""

    folder: Path
    stems: list[Path]  # WAV, one per stem (candidate, point or the song)
    mixes: list[Path]  # WAV, the context (if any) and each stem
    downloads: list[Path]  # every file: WAV, FLAC, PNG and the sidecar
    plot: Path
    sidecar: Path
    settings: dict[str, Any]


def _text(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _generate(p: AccompanimentPipeline, r: Request) -> Generation:
    duration = None if r.context else r.duration
    return p.generate(r.context, _text(r.prompt), r.reference, duration=duration, **r.options)


def _inpaint(p: AccompanimentPipeline, r: Request) -> Generation:
    stem = _required(r.stem, "inpainting needs the stem to edit")
    return p.inpaint(stem, r.start, r.end, r.context, _text(r.prompt), r.reference, **r.options)


def _vary(p: AccompanimentPipeline, r: Request) -> Generation:
    stem = _required(r.stem, "a variation needs the stem to vary")
    return p.vary(stem, r.strength, r.context, _text(r.prompt), r.reference, **r.options)


def _loop(p: AccompanimentPipeline, r: Request) -> Generation:
    return p.loop(r.bars, r.bpm, r.context, _text(r.prompt), r.reference, **r.options)


def _interpolate(p: AccompanimentPipeline, r: Request) -> Generation:
    start = r.start_reference or _text(r.start_prompt)
    end = r.end_reference or _text(r.end_prompt)
    if start is None or end is None:
        raise ValueError("interpolation needs a start and an end: a prompt or a reference each")
    duration = None if r.context else r.duration
    return p.interpolate(start, end, r.context, points=r.points, duration=duration, **r.options)


def _song(p: AccompanimentPipeline, r: Request) -> Generation:
    parts: list[str | AudioInput] = [part.strip() for part in r.parts if part.strip()]
    if not parts:
        raise ValueError("a song needs one prompt per part (one per line)")
    duration = None if r.context else r.duration
    return p.song(parts, r.context, duration=duration, **r.options)


def _required(path: str | None, message: str) -> str:
    if not path:
        raise ValueError(message)
    return path


MODES: dict[str, Callable[[AccompanimentPipeline, Request], Generation]] = {
    "generate": _generate,
    "inpaint": _inpaint,
    "vary": _vary,
    "loop": _loop,
    "interpolate": _interpolate,
    "song": _song,
}
"""Mode name -> the pipeline call it makes."""

CLAP_MODES = ("interpolate", "song")  # modes that exist only with CLAP conditioning


class Studio:
    """One pipeline behind the UI: runs requests, one at a time, into files.

    Args:
        pipeline: the loaded bundle.
        out: folder for the runs' files (default: a temporary folder for this process).
    """

    def __init__(self, pipeline: AccompanimentPipeline, out: Path | None = None) -> None:
        self.pipeline = pipeline
        self.out = Path(tempfile.mkdtemp(prefix="openriff-ui-")) if out is None else out
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._fingerprint: dict[str, Any] | None = None  # hashed once: bundles can be large

    # What the bundle supports ------------------------------------------------------------

    def clap_unavailable(self) -> str | None:
        """Why prompts and references cannot be used with this bundle, or None if they can."""
        model = self.pipeline.model
        if (
            self.pipeline.embedding_dim == 0
            or dict(model.config.overrides).get("embedding_dim", 1) == 0
        ):
            return "this bundle's model was trained without CLAP conditioning"
        if model.clap_checkpoint is None:
            return "this bundle names no CLAP checkpoint"
        if not Path(model.clap_checkpoint).is_file():
            return (
                f"the CLAP checkpoint {model.clap_checkpoint} is not on this machine "
                "(start the UI with --clap PATH)"
            )
        return None

    def recommended(self) -> dict[str, Any]:
        """The sampling defaults the page shows: the bundle's, over the library's."""
        defaults = Sampling()
        values = {name: getattr(defaults, name) for name in RECOMMENDABLE}
        return {**values, **self.pipeline.recommended}

    def samplers(self) -> list[str]:
        """Samplers that fit the bundle's objective."""
        return sorted(self.pipeline.objective.samplers)

    # Running -------------------------------------------------------------------------------

    def check_upload(self, path: str | None, what: str) -> str | None:
        """``path`` if it is an upload within the limits (None passes through).

        Raises:
            ValueError: a missing, too large or too long file, naming it.
        """
        if not path:
            return None
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"the {what} upload is missing ({file.name})")
        size = file.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise ValueError(
                f"the {what} is {size / 2**20:.0f} MB; uploads are limited to "
                f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB"
            )
        import soundfile as sf

        try:
            seconds = sf.info(str(file)).duration
        except RuntimeError as error:
            raise ValueError(f"the {what} is not audio that soundfile can read: {error}") from None
        if seconds > MAX_UPLOAD_SECONDS:
            raise ValueError(
                f"the {what} is {seconds:.0f} s long; uploads are limited to "
                f"{MAX_UPLOAD_SECONDS:.0f} s"
            )
        return str(file)

    def cancel(self) -> None:
        """Stop the running generation at its next sampling step or decoded block."""
        self._cancel.set()

    def run(self, request: Request, progress: Progress | None = None) -> Outcome:
        """Check the request's uploads, generate, and write the files of the result.

        Raises:
            ValueError: a bad upload or setting (the library's message).
            Cancelled: :meth:`cancel` was called during the run.
        """
        if request.mode not in MODES:
            raise ValueError(f"unknown mode {request.mode!r}: use one of {', '.join(MODES)}")
        if request.mode in CLAP_MODES and (reason := self.clap_unavailable()):
            raise ValueError(f"{request.mode} needs prompts or references: {reason}")
        uploads = {
            "context": "context", "stem": "stem", "reference": "reference",
            "start_reference": "start reference", "end_reference": "end reference",
        }  # fmt: skip
        checked = {key: self.check_upload(getattr(request, key), what)
                   for key, what in uploads.items()}  # fmt: skip
        options = dict(request.options)
        options["style_reference"] = self.check_upload(options.get("style_reference"), "style")
        if int(options.get("num_candidates", 1)) > MAX_CANDIDATES:
            raise ValueError(f"at most {MAX_CANDIDATES} candidates at once in the UI")
        request = replace(
            request, context=checked["context"], stem=checked["stem"],
            reference=checked["reference"], start_reference=checked["start_reference"],
            end_reference=checked["end_reference"], options=options,
        )  # fmt: skip
        with self._lock:  # one generation at a time per loaded model
            self._cancel.clear()

            def report(stage: str, done: int, total: int) -> None:
                if self._cancel.is_set():
                    raise Cancelled("cancelled")
                if progress is not None:
                    progress(stage, done, total)

            self.pipeline.on_progress = report
            try:
                generation = MODES[request.mode](self.pipeline, request)
            finally:
                self.pipeline.on_progress = None
        return self.write(generation, request)

    def write(self, generation: Generation, request: Request) -> Outcome:
        """The result's files in a new folder: WAV and FLAC of stems and mixes, plot, sidecar."""
        self.out.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{request.mode}-", dir=self.out))
        rate = generation.sample_rate
        writers: dict[Path, Callable[[str], object]] = {}
        stems: list[Path] = []
        mixes: list[Path] = []
        panels = [] if generation.context is None else [("context", generation.context)]
        for i, audio in enumerate(generation.audio):
            name = f"stem-{i + 1}" if len(generation.audio) > 1 else "stem"
            together = generation.mix if generation.mix is not None else audio
            if generation.mix is None and generation.context is not None:
                together, _ = mix([generation.context, audio])
            for kind, wave, into in (("", audio, stems), ("mix-", together, mixes)):
                wav = folder / f"{kind}{name}.wav"
                writers[wav] = audio_writer(wave, rate, "24")
                writers[wav.with_suffix(".flac")] = audio_writer(wave, rate, "24")
                into.append(wav)
            panels.append((name, audio))
        plot = folder / "spectrograms.png"
        writers[plot] = plot_writer(panels[:5], rate)
        sidecar = folder / "settings.json"
        if self._fingerprint is None:
            self._fingerprint = self.pipeline.fingerprint()
        outputs = {"stems": [p.name for p in stems], "mixes": [p.name for p in mixes]}
        record = {"settings": generation.settings, "model": self._fingerprint, "outputs": outputs}
        text = json.dumps(record, indent=1, default=str) + "\n"
        writers[sidecar] = lambda tmp: Path(tmp).write_text(text)
        written = write_together(writers)
        return Outcome(folder, stems, mixes, written, plot, sidecar, generation.settings)

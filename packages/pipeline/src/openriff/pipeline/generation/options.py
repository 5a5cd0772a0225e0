"""The sampling options of every generation mode, and what a generation returns.

:class:`Sampling` is the one place the sampling settings are declared: each field's
metadata gives its range (checked on creation), its command-line flag and help (the CLI
builds its flags from it in :mod:`openriff.pipeline.cli.sampling`), and
whether a bundle may recommend it (:data:`RECOMMENDABLE`, checked by
:func:`check_recommendation`). The sidecar of a generation records :func:`dataclasses.asdict`
of it, so a new option reaches the CLI, the bundles and the sidecars at once.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from torch import Tensor

from openriff.latent_diffusion.samplers import SAMPLERS
from openriff.pipeline.audio_io import AudioInput

if TYPE_CHECKING:
    from openriff.pipeline.streamed import ContextFile

MAX_CFG = 20.0
MAX_STEPS = 1000


def _option(
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    below: float | None = None,
    choices: tuple[str, ...] = (),
    flag: str | None = None,
    parse: Callable[[str], object] | None = None,
    recommend: bool = False,
) -> dict[str, Any]:
    """A :class:`Sampling` field's metadata.

    Its range (``low <= value <= high``, ``value < below``), its choices, its CLI flag
    (default ``--name-with-dashes``), help and parser (default: the type of the default
    value), and whether bundles may recommend it.
    """
    return {"help": help, "low": low, "high": high, "below": below, "choices": choices,
            "flag": flag, "parse": parse, "recommend": recommend}  # fmt: skip


@dataclass(frozen=True)
class Sampling:
    """Sampling options shared by every generation method (checked on creation).

    Attributes:
        steps: sampler steps, 1 to 1000.
        sampler: ``heun``, ``euler``, ``ddim`` or ``consistency``.
        cfg_context: guidance strength of the context, in [0, 20].
        cfg_clap: guidance strength of the CLAP embedding, in [0, 20].
        cfg_rescale: CFG rescale in [0, 1].
        stereo_width: pseudo-stereo width in [0, 1] for mono codecs (0: mono).
        seed: randomness (None draws one; the settings report it).
        num_candidates: stems generated at once.
        use_bridge: send prompts through the bundle's bridge prior.
        style_reference: a recording (path or array) to ground the style to, or None.
        style_strength: strength of the style grounding (1: as in the bass paper).
        clip_estimate: clip the denoiser's clean estimates to the codec's latent range
            (codecs with a ``latent_bound``; see
            :class:`~openriff.latent_diffusion.guidance.ClippedDenoiser`).
    """

    steps: int = field(default=30, metadata=_option(
        "sampler steps", low=1, high=MAX_STEPS, recommend=True))  # fmt: skip
    sampler: str = field(default="heun", metadata=_option(
        "sampler", choices=tuple(SAMPLERS), recommend=True))  # fmt: skip
    cfg_context: float = field(default=1.25, metadata=_option(
        "context guidance", low=0.0, high=MAX_CFG, recommend=True))  # fmt: skip
    cfg_clap: float = field(default=1.25, metadata=_option(
        "CLAP guidance", low=0.0, high=MAX_CFG, recommend=True))  # fmt: skip
    cfg_rescale: float = field(default=0.0, metadata=_option(
        "CFG rescale", low=0.0, high=1.0, recommend=True))  # fmt: skip
    stereo_width: float = field(default=0.4, metadata=_option(
        "pseudo-stereo width (0: mono)", low=0.0, high=1.0, recommend=True))  # fmt: skip
    seed: int | None = field(default=None, metadata=_option(
        "seed (default: drawn, recorded)", low=0, below=2**63, parse=int))  # fmt: skip
    num_candidates: int = field(default=1, metadata=_option(
        "stems to generate", low=1, flag="--candidates"))  # fmt: skip
    use_bridge: bool = field(default=True, metadata=_option(
        "prompts skip the bridge prior", flag="--no-bridge"))  # fmt: skip
    style_reference: AudioInput | None = field(default=None, metadata=_option(
        "ground the style to this recording", parse=Path))  # fmt: skip
    style_strength: float = field(default=1.0, metadata=_option(
        "strength of the style grounding", low=0.0, high=1.0))  # fmt: skip
    clip_estimate: bool = field(default=True, metadata=_option(
        "leave the denoiser's estimates unclipped (default: clipped to the codec's latent "
        "range)", flag="--no-clip-estimate"))  # fmt: skip

    def __post_init__(self) -> None:
        for item in fields(self):
            value, meta = getattr(self, item.name), item.metadata
            if meta["choices"] and value not in meta["choices"]:
                raise ValueError(
                    f"{item.name} must be one of {sorted(meta['choices'])}, got {value!r}"
                )
            if value is None or isinstance(value, (str, bool)) or meta["low"] is None:
                continue
            if meta["high"] is not None and not meta["low"] <= value <= meta["high"]:
                raise ValueError(
                    f"{item.name} must be in [{meta['low']:g}, {meta['high']:g}], got {value}"
                )
            if meta["below"] is not None and not meta["low"] <= value < meta["below"]:
                raise ValueError(f"{item.name} must be in [0, 2**63), got {value}")
            if not meta["low"] <= value:
                raise ValueError(f"{item.name} must be >= {meta['low']:g}, got {value}")


RECOMMENDABLE = tuple(f.name for f in fields(Sampling) if f.metadata["recommend"])
"""Sampling settings a bundle may recommend (bundle.json ``"sampling"``)."""


def check_recommendation(sampling: object, where: str) -> None:
    """Refuse a recommendation that is not a mapping of valid :data:`RECOMMENDABLE` settings.

    Raises:
        ValueError: naming ``where`` and the problem.
    """
    if not isinstance(sampling, dict):
        raise ValueError(f"{where} must be a mapping of sampling settings, got {sampling!r}")
    unknown = sorted(set(sampling) - set(RECOMMENDABLE))
    if unknown:
        raise ValueError(
            f"{where} recommends unknown sampling settings {unknown}; a bundle may recommend "
            f"{list(RECOMMENDABLE)}"
        )
    try:
        Sampling(**sampling)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: the recommended sampling is invalid: {error}") from error


def resolve(given: dict[str, Any], recommended: dict[str, Any]) -> Sampling:
    """``given`` over the bundle's ``recommended`` settings over :class:`Sampling`'s defaults.

    A recommendable setting given as None takes the bundle's value (else the default).
    """
    chosen = {k: v for k, v in given.items() if not (k in RECOMMENDABLE and v is None)}
    try:
        return Sampling(**{**recommended, **chosen})
    except TypeError as error:
        raise ValueError(f"unknown sampling option: {error}") from error


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose (``"bridge"``, ...), drawn from ``seed``.

    numpy's ``SeedSequence`` mixes the two, so each purpose gets an independent stream and
    the same ``seed`` always gives the same one.
    """
    state = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())]).generate_state(1)
    return int(state[0])


@dataclass
class Generation:
    """Generated audio and every setting used.

    Attributes:
        audio: ``[N, channels, samples]`` stems (candidates, interpolation points, or the
            stems of a song in order).
        sample_rate: 48000.
        settings: everything needed to reproduce the result (seed included).
        latents: ``[N, channels, D, frames]`` the generated latents (for a mono codec,
            one latent sequence per output channel), before decoding.
        mix: ``[channels, samples]`` mix of a song's stems (and context), else None.
        context: ``[C, samples]`` the context as the model heard it (48 kHz, aligned with
            and cropped to the stems), else None: what a mix of context and stem uses (a
            song's context is in its ``mix``).
        context_file: the file the context is read from when it was not kept in memory
            (``generate(..., keep_context=False)``; ``context`` is then None), else None.
    """

    audio: NDArray[np.float32]
    sample_rate: int
    settings: dict[str, Any]
    latents: NDArray[np.float32] | None = None
    mix: NDArray[np.float32] | None = None
    context: NDArray[np.float32] | None = None
    context_file: ContextFile | None = None


def describe(value: object) -> str | None:
    """A JSON-able record of an input: its path, or the shape of an array."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, (np.ndarray, Tensor)):
        return f"array{list(value.shape)}"
    return f"array{list(np.shape(np.asarray(value)))}"

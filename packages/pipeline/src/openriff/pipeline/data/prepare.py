"""Preprocessing: multitrack songs -> sharded latent data sets (``openriff prepare``).

Each song becomes one shard per split, ``<out>/<split>/<song id>.safetensors``, holding
its pairs (:mod:`openriff.pipeline.data.pairs`) encoded with a LatentCodec and, unless run
CLAP-free, the CLAP embedding of each pair's reference segment:

* ``target`` ``[N, D, T]`` and ``context`` ``[N, D, T]`` latents (context zeros where the
  pair has none) with ``has_context`` ``[N]``; with ``context_chroma`` the context is
  ``[N, D + 12, T]``: its latents, then its chromagram (:mod:`openriff.pipeline.chroma`);
* ``clap`` ``[N, 512]`` and ``has_clap`` ``[N]`` (no reference segment, or CLAP-free: 0);
* metadata: the pairs (song, start, target stem, context stems, instrument, tags) as JSON.

A shard is written to a temporary file and renamed, so a finished shard is never lost
and an interrupted run resumes by skipping songs whose shard exists. Under ``torchrun``
every process takes every ``world``-th song; each song's randomness comes from its own
seed (run seed + song name), so the result does not depend on the number of processes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import save_file
from torch import Tensor
from tqdm import tqdm

from openriff.pipeline.chroma import append_context_chroma
from openriff.pipeline.contracts import ClapEmbedder, LatentCodec
from openriff.pipeline.data.layout import ScanReport, Song, check_layout, load_stems, read_songs
from openriff.pipeline.data.pairs import (
    Pair,
    PairConfig,
    level_pair,
    render_pair,
    sample_pairs,
    split_songs,
)


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of a preprocessing run (stored as ``prepare.json`` next to the shards).

    Attributes:
        data: root of the multitrack data set.
        layout: ``generic``, ``slakh``, ``musdb`` or ``moisesdb``.
        split: the official split of Slakh2100 or MUSDB18-HQ to prepare (None: all, never
            Slakh's ``omitted/``); see :func:`~openriff.pipeline.data.layout.read_songs`.
            ``validation`` then holds out songs of that split.
        pairs: windowing and probabilities of the pairs.
        validation: share of songs held out (by song).
        seed: seed of the split and of every song's pairs.
        batch_size: windows encoded per codec call.
        context_chroma: append the context's chromagram to its latents
            (:func:`openriff.pipeline.chroma.context_chroma`); bundles trained on such
            shards append it when they generate.
        context_lufs: contexts are brought to this integrated loudness (LUFS), targets
            by the same gain (:func:`openriff.pipeline.data.pairs.level_pair`); None
            keeps the songs' own levels. Generation brings contexts to it too.
        level_augment_db: each pair's gain is drawn within +/- this many dB around the one
            that reaches ``context_lufs`` (level augmentation).
    """

    data: str
    layout: str = "generic"
    split: str | None = "train"
    pairs: PairConfig = field(default_factory=PairConfig)
    validation: float = 0.1
    seed: int = 0
    batch_size: int = 8
    context_chroma: bool = False
    context_lufs: float | None = -14.0
    level_augment_db: float = 6.0

    def __post_init__(self) -> None:
        check_layout(self.layout, self.split)
        if not 0.0 <= self.validation < 1.0:
            raise ValueError(f"validation must be in [0, 1), got {self.validation}")
        if self.context_lufs is not None and not -60.0 <= self.context_lufs <= 0.0:
            raise ValueError(f"context_lufs must be in [-60, 0] LUFS, got {self.context_lufs}")
        if not 0.0 <= self.level_augment_db <= 20.0:
            raise ValueError(f"level_augment_db must be in [0, 20], got {self.level_augment_db}")


def prepare_config(
    data: str | os.PathLike[str],
    hop_length: float,
    *,
    layout: str = "generic",
    split: str | None = "train",
    window_latents: int = 120,
    hop_seconds: float = 3.0,
    reference_seconds: float = 10.0,
    targets: Sequence[str] = (),
    validation: float = 0.1,
    seed: int = 0,
    context_chroma: bool = False,
    context_lufs: float | None = -14.0,
    level_augment_db: float = 6.0,
) -> PrepareConfig:
    """The :class:`PrepareConfig` of ``openriff prepare``'s settings.

    Windows are given in latent frames of a codec with ``hop_length`` samples per frame,
    hops and references in seconds.
    """
    pairs = PairConfig(
        window=round(window_latents * hop_length),
        hop=int(hop_seconds * 48_000),
        reference=int(reference_seconds * 48_000),
        targets=tuple(targets),
    )
    return PrepareConfig(
        data=str(data), layout=layout, split=split, pairs=pairs, validation=validation, seed=seed,
        context_chroma=context_chroma, context_lufs=context_lufs,
        level_augment_db=level_augment_db,
    )  # fmt: skip


def song_id(song: Song) -> str:
    """A file-name-safe identity of a song (readable prefix + hash of its name)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in song.name)[:40]
    return f"{safe}-{hashlib.sha256(song.name.encode()).hexdigest()[:10]}"


def song_rng(seed: int, song: Song, purpose: str = "") -> np.random.Generator:
    """The randomness of one song's pairs (or of one ``purpose`` for them), from ``seed``."""
    key = f"{seed}:{song.name}" + (f":{purpose}" if purpose else "")
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _encode(codec: LatentCodec, waves: list[NDArray[np.float32]], batch_size: int) -> Tensor:
    parts = []
    param = next(codec.parameters()) if isinstance(codec, torch.nn.Module) else torch.empty(0)
    for start in range(0, len(waves), batch_size):
        chunk = np.stack(waves[start : start + batch_size])[:, None]  # (B, 1, S)
        batch = torch.from_numpy(chunk).to(param.device, param.dtype)
        parts.append(codec.encode(batch).float().cpu())
    return torch.cat(parts)


def encode_song(
    song: Song,
    pairs: list[Pair],
    waves: dict[str, NDArray[np.float32]],
    codec: LatentCodec,
    clap: ClapEmbedder | None,
    config: PrepareConfig,
) -> dict[str, Tensor]:
    """The tensors of one song's shard."""
    rendered = [render_pair(p, waves, config.pairs.reference) for p in pairs]
    silence = np.zeros(config.pairs.window, np.float32)
    targets = _encode(codec, [t for _, t, _ in rendered], config.batch_size)
    mixes = [c if c is not None else silence for c, _, _ in rendered]
    contexts = _encode(codec, mixes, config.batch_size)
    has_context = torch.tensor([c is not None for c, _, _ in rendered])
    if config.context_chroma:
        audio = torch.from_numpy(np.stack(mixes))  # (N, S)
        contexts = append_context_chroma(contexts, audio, float(codec.hop_length))
    contexts[~has_context] = 0.0
    has_clap = torch.tensor([clap is not None and r is not None for _, _, r in rendered])
    embeddings = torch.zeros(len(pairs), 512 if clap is None else clap.dim)
    if clap is not None and bool(has_clap.any()):
        refs = [r for _, _, r in rendered if r is not None]
        embeddings[has_clap] = clap.embed_audio(refs, sample_rate=48_000).float()
    return {
        "target": targets.contiguous(),
        "context": contexts.contiguous(),
        "has_context": has_context,
        "clap": embeddings.contiguous(),
        "has_clap": has_clap,
    }


def prepare(
    config: PrepareConfig,
    codec: LatentCodec,
    out: str | os.PathLike[str],
    *,
    clap: ClapEmbedder | None = None,
    show_progress: bool = True,
    on_song: Callable[[Song], None] | None = None,
    codec_source: dict[str, Any] | None = None,
    clap_checkpoint: str | None = None,
) -> ScanReport:
    """Write the shards of a data set (resuming a previous run in ``out``).

    Args:
        config: what to prepare.
        codec: a LatentCodec (``encode([B, C, S]) -> [B, D, T]``), e.g. an openriff CAE.
        out: output folder; ``train/`` and ``validation/`` shards go below it.
        clap: a :class:`~openriff.clap_bridge.encoder.ClapEncoder`, or None (CLAP-free).
        show_progress: show a progress bar on rank 0.
        on_song: called after each finished song (progress hooks, tests).
        codec_source: where the codec comes from (``{"path": ...}`` or ``{"preset": ...}``),
            recorded so that training can bundle it.
        clap_checkpoint: path of the CLAP checkpoint used, recorded likewise.

    Returns:
        the scan report (songs used, what was skipped and why).
    """
    # The songs are read first: a data set with no usable song leaves no output folder.
    songs, report = read_songs(config.layout, config.data, config.split)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    settings = {
        "config": _jsonable(asdict(config)),
        "clap": clap is not None,
        "clap_checkpoint": clap_checkpoint,
        "clap_architecture": None
        if clap is None or not hasattr(clap, "architecture")
        else {"amodel": clap.architecture.amodel, "fusion": clap.architecture.fusion},
        "codec": codec_source,
    }
    record = root / "prepare.json"
    previous: Any = None
    if record.is_file():
        previous = json.loads(record.read_text())
        # Folders prepared before a setting existed were prepared without it.
        before = {"context_chroma": False, "context_lufs": None, "level_augment_db": 0.0,
                  "split": None}  # fmt: skip
        for key, value in before.items():
            previous.get("config", {}).setdefault(key, value)
        finished = any(root.glob("*/*.safetensors"))
        if previous != settings and finished:
            raise ValueError(
                f"{root} was prepared with other settings ({record}); use a new folder"
            )
    if not record.is_file() or previous != settings:  # new, or nothing finished before
        tmp = root / f".prepare.json.{os.getpid()}.tmp"  # ranks may race here: own files
        tmp.write_text(json.dumps(settings, indent=1) + "\n")
        os.replace(tmp, record)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    train, held = split_songs(songs, config.validation, config.seed)
    jobs = [("train", s) for s in train] + [("validation", s) for s in held]
    mine = jobs[rank::world]
    bar = tqdm(mine, disable=not show_progress or rank != 0, unit="song")
    for split, song in bar:
        shard = root / split / f"{song_id(song)}.safetensors"
        if shard.is_file():
            continue
        waves = load_stems(song, report)
        pairs = sample_pairs(song, waves, config.pairs, song_rng(config.seed, song))
        if config.context_lufs is not None:
            rng = song_rng(config.seed, song, "levels")
            pairs = [level_pair(p, waves, config.context_lufs, config.level_augment_db, rng)
                     for p in pairs]  # fmt: skip
        if not pairs:
            report.skipped.append(f"{song.folder}: no window with an audible non-vocal stem")
            continue
        with torch.no_grad():
            tensors = encode_song(song, pairs, waves, codec, clap, config)
        metadata = {"pairs": json.dumps([_jsonable(asdict(p)) for p in pairs])}
        shard.parent.mkdir(parents=True, exist_ok=True)
        tmp = shard.with_name(f".{shard.name}.tmp")
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, shard)
        if on_song is not None:
            on_song(song)
    return report


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value

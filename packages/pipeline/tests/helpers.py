"""Shared steps of the pipeline's CLI tests: tiny synthetic songs, tiny preparation."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from openriff.pipeline.cli import main

# An untrained tiny codec and 8-frame windows: seconds, not minutes, on a CPU.
TINY_WINDOWS = [
    "--window-latents", "8", "--hop-seconds", "0.5", "--reference-seconds", "0.5",
    "--validation", "0", "--quiet",
]  # fmt: skip
TINY_PREPARE = ["--codec-preset", "diffariff-tiny", *TINY_WINDOWS]


def synth_songs(folder: Path, songs: int) -> Path:
    """``songs`` two-bar synthetic songs in ``folder`` (through the CLI)."""
    assert main(["data", "synth", "--songs", str(songs), "--out", str(folder), "--bars", "2"]) == 0
    return folder


def prepare_args(songs: Path, out: Path, *extra: str, codec: Path | None = None) -> list[str]:
    """``openriff prepare`` arguments for a tiny CLAP-free (unless ``extra`` says) run.

    Without ``codec`` (a CAE checkpoint folder), the untrained ``diffariff-tiny`` preset.
    """
    codec_args = TINY_PREPARE if codec is None else ["--codec", str(codec), *TINY_WINDOWS]
    return ["prepare", "--data", str(songs), "--out", str(out), *codec_args, *extra]


def random_codec(folder: Path, seed: int = 0, channels: int = 1) -> Path:
    """A ``diffariff-tiny`` checkpoint with every weight random (none zero-initialised).

    An untrained preset's decoder ignores its latents (its zero-initialised layers cut
    them off), so audio-level checks of inpainting need this one, whose decoding depends
    on the latents. ``channels=2`` makes a stereo codec.
    """
    import dataclasses

    import torch

    from openriff.cae import PRESETS, build
    from openriff.cae.checkpoint import save_pretrained

    kind, config = PRESETS["diffariff-tiny"]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build(kind, dataclasses.replace(config, channels=channels)).eval()
        with torch.no_grad():
            for param in model.parameters():
                if not param.any():
                    param.normal_(0.0, 0.05)
    return save_pretrained(model, folder)


def torchrun(processes: int) -> list[str]:
    """The command prefix running ``openriff`` in ``processes`` CPU processes."""
    launcher = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    return [
        launcher,
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "openriff.pipeline.cli",
    ]


def randomize_zero_weights(folder: Path, seed: int = 0, scale: float = 0.02) -> None:
    """Give every near-zero tensor of the ``*.safetensors`` files in ``folder`` random values.

    A denoiser trained for two steps still has its zero-initialised layers (output
    convolution, residual branches) near zero and ignores its conditions; with them
    random, the conditions change the output.
    """
    import torch
    from safetensors.torch import load_file, save_file

    generator = torch.Generator().manual_seed(seed)
    for path in sorted(folder.glob("*.safetensors")):
        state = load_file(str(path))
        for name, tensor in state.items():
            if tensor.is_floating_point() and float(tensor.abs().max()) < 1e-4:
                noise = torch.randn(tensor.shape, generator=generator) * scale
                state[name] = noise.to(tensor.dtype)
        save_file(state, str(path))


def tone_file(path: Path, freq: float, seconds: float = 0.5, rate: int = 48_000) -> Path:
    """A mono sine of ``freq`` Hz at 0.3 peak, written to ``path``."""
    import math

    import numpy as np
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * math.pi * freq * t), rate)
    return path


def slakh_track(folder: Path, seconds: float = 0.5) -> Path:
    """A Slakh2100 track folder with a rendered bass and piano stem."""
    (folder / "stems").mkdir(parents=True)
    (folder / "metadata.yaml").write_text(
        "stems:\n"
        "  S00: {inst_class: Bass, audio_rendered: true}\n"
        "  S01: {inst_class: Piano, audio_rendered: true}\n"
    )
    tone_file(folder / "stems" / "S00.flac", 55, seconds)
    tone_file(folder / "stems" / "S01.flac", 262, seconds)
    return folder


def moises_song(folder: Path, title: str, seconds: float = 0.5) -> Path:
    """A MoisesDB song folder (its name is the song's id) with a bass and a guitar stem."""
    import json

    stems = [{"stemName": name, "tracks": [{"id": f"{name}1", "extension": "wav"}]}
             for name in ("bass", "guitar")]  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "data.json").write_text(json.dumps({"song": title, "stems": stems}))
    tone_file(folder / "bass" / "bass1.wav", 55, seconds)
    tone_file(folder / "guitar" / "guitar1.wav", 196, seconds)
    return folder

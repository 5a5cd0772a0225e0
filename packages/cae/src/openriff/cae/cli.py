"""``openriff-cae``: train a CAE, encode audio to latents, decode latents, round-trip.

::

    openriff-cae train --data AUDIO_DIR --out RUN_DIR [--preset diffariff-tiny] [--steps N]
    openriff-cae encode --model CKPT INPUT.wav [...] --out LATENT_DIR
    openriff-cae decode --model CKPT LATENTS.npy [...] --out AUDIO_DIR [--steps 1] [--seed 0]
    openriff-cae roundtrip --model CKPT INPUT.wav --out OUTPUT.wav [--decoding magnitude]

``encode`` writes ``NAME.npy`` (``[C_latents=D, T]`` float32 latents) and ``NAME.json``
(original length and sample rate, so ``decode`` restores the exact length). Multi-process
training: ``torchrun --nproc_per_node N -m openriff.cae.cli train ...``. Every output is
written to a temporary file and renamed when complete; existing outputs are refused
unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from openriff.cae.audio import AudioError, audio_info, load_audio, save_audio
from openriff.cae.checkpoint import from_preset, from_pretrained
from openriff.cae.codec import DECODINGS, SpectrogramCodec
from openriff.cae.files import write_atomic
from openriff.cae.flags import COUNT, POSITIVE, SEED, SIZE, Parser, UsageError
from openriff.cae.presets import PRESETS


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _model(args: argparse.Namespace) -> SpectrogramCodec:
    device = torch.device(args.device)
    if args.model is not None:
        return from_pretrained(args.model, device=device)
    print(f"warning: using the UNTRAINED preset {args.preset!r}", file=sys.stderr)
    return from_preset(args.preset).to(device).eval()


def _check_free(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise CLIError(f"{path} exists; pass --overwrite to replace it")


def _save_array(array: npt.NDArray[np.float32], path: str) -> None:
    with open(path, "wb") as file:
        np.save(file, array)


def _save_json(data: dict[str, object], path: str) -> None:
    Path(path).write_text(json.dumps(data) + "\n")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a CAE (``train``)."""
    from openriff.cae.train import TrainConfig, train

    config = TrainConfig(
        data=str(args.data),
        preset=args.preset,
        steps=args.steps,
        batch_size=args.batch_size,
        crop_latents=args.crop_latents,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        seed=args.seed,
        init=None if args.init is None else str(args.init),
        frozen=tuple(args.freeze),
    )
    final = train(config, args.out, device=args.device, show_progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained model: {final}")
    return 0


def _planned(
    inputs: list[str], out: Path, suffixes: tuple[str, ...], overwrite: bool
) -> list[Path]:
    """Each input's outputs (``out/STEM.SUFFIX``), checked free and distinct before any work.

    Two inputs with one name (``a/x.wav`` and ``b/x.wav``) would write the same file.
    """
    seen: dict[Path, str] = {}
    for source in inputs:
        for suffix in suffixes:
            target = out / f"{Path(source).stem}{suffix}"
            if target in seen:
                raise CLIError(f"{seen[target]} and {source} would both write {target}")
            seen[target] = source
            _check_free(target, overwrite)
    return list(seen)


def cmd_encode(args: argparse.Namespace) -> int:
    """Encode audio files to ``.npy`` latents (``encode``).

    Every input is checked (readable audio) and every output (free, distinct) before the
    first file is written: a refused run leaves nothing behind.
    """
    model = _model(args)
    out = Path(args.out)
    _planned(args.inputs, out, (".npy", ".json"), args.overwrite)
    for source in args.inputs:
        if not Path(source).is_file():
            raise CLIError(f"{source}: no such file")
        audio_info(source)
    for source in args.inputs:
        source = Path(source)
        npy = out / f"{source.stem}.npy"
        meta = out / f"{source.stem}.json"
        wave = load_audio(source, model.sample_rate)
        latents = model.encode(wave[None].to(args.device))[0].cpu().numpy()  # (D, T)
        write_atomic(npy, functools.partial(_save_array, latents.astype(np.float32)))
        info = {"samples": wave.shape[-1], "sample_rate": model.sample_rate, "source": str(source)}
        write_atomic(meta, functools.partial(_save_json, info))
        print(f"{source} -> {npy} {list(latents.shape)}")
    return 0


# The longest latent file decode reads: 24 h at the paper CAE's ~12 Hz frame rate.
MAX_LATENT_FRAMES = 24 * 3600 * 12


def _read_latents(path: Path, latent_dim: int, hop: float) -> tuple[torch.Tensor, int | None]:
    """``[D, T]`` latents from an ``.npy`` file and the length its ``.json`` records.

    The header is checked before any data is read: a file claiming a huge or odd array
    (another rank, an object or complex dtype, more data than the file holds) is refused.
    """
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    try:
        with path.open("rb") as file:
            npy: Any = np.lib.format  # untyped in numpy 1.x
            version = npy.read_magic(file)
            readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
            if version not in readers:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = readers[version](file)
            offset = file.tell()
    except (ValueError, OSError, SyntaxError) as error:
        raise CLIError(f"{path}: not a .npy array ({error})") from None
    if len(shape) != 2 or shape[0] != latent_dim:
        raise CLIError(f"{path}: expected latents shaped [{latent_dim}, T], got {list(shape)}")
    if dtype.kind not in "fiu" or not 0 < shape[1] <= MAX_LATENT_FRAMES:
        raise CLIError(
            f"{path}: expected [{latent_dim}, T] real numbers with 0 < T <= "
            f"{MAX_LATENT_FRAMES}, got {dtype} {list(shape)}"
        )
    if offset + shape[0] * shape[1] * dtype.itemsize > path.stat().st_size:
        raise CLIError(f"{path}: the file is shorter than its header says (truncated?)")
    latents = np.load(path, allow_pickle=False)
    if not np.isfinite(latents).all():
        raise CLIError(f"{path}: the latents contain NaN or infinite values")
    return torch.from_numpy(latents.astype(np.float32)), _recorded_length(path, shape[1] * hop)


def _recorded_length(path: Path, most: float) -> int | None:
    """The audio length (samples) ``encode`` recorded beside ``path``, if any (<= ``most``)."""
    meta = path.with_suffix(".json")
    if not meta.is_file():
        return None
    try:
        info = json.loads(meta.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CLIError(f"{meta}: not valid JSON ({error})") from None
    samples = info.get("samples") if isinstance(info, dict) else None
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= most:
        raise CLIError(
            f"{meta}: 'samples' must be a whole number in [1, {most:.0f}] (what the latents "
            f"cover), got {samples!r}"
        )
    return samples


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode ``.npy`` latents to audio files (``decode``)."""
    model = _model(args)
    out = Path(args.out)
    _planned(args.inputs, out, (f".{args.format}",), args.overwrite)
    read = {s: _read_latents(Path(s), model.latent_dim, model.hop_length) for s in args.inputs}
    for source in map(Path, args.inputs):
        target = out / f"{source.stem}.{args.format}"
        latents, samples = read[str(source)]
        generator = torch.Generator(args.device).manual_seed(args.seed)
        wave = model.decode(
            latents[None].to(args.device),
            steps=args.steps,
            generator=generator,
            length=samples,
            decoding=args.decoding,
        )[0]
        save_audio(target, wave, model.sample_rate, subtype=args.subtype, overwrite=True)
        print(f"{source} -> {target} ({wave.shape[-1] / model.sample_rate:.2f} s)")
    return 0


def cmd_roundtrip(args: argparse.Namespace) -> int:
    """Encode and decode one audio file (``roundtrip``)."""
    model = _model(args)
    target = Path(args.out)
    _check_free(target, args.overwrite)
    wave = load_audio(args.input, model.sample_rate)
    latents = model.encode(wave[None].to(args.device))
    generator = torch.Generator(args.device).manual_seed(args.seed)
    out = model.decode(
        latents,
        steps=args.steps,
        generator=generator,
        length=wave.shape[-1],
        decoding=args.decoding,
    )[0]
    save_audio(target, out, model.sample_rate, subtype=args.subtype, overwrite=True)
    print(f"{args.input} -> {list(latents.shape[1:])} latents -> {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``openriff-cae``."""
    parser = Parser(prog="openriff-cae", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("--model", type=Path, help="checkpoint folder (config.json + weights)")
        group.add_argument("--preset", choices=sorted(PRESETS), help="untrained preset (testing)")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    def audio_out(p: argparse.ArgumentParser) -> None:
        p.add_argument("--steps", type=COUNT, default=1, help="consistency decoding steps")
        p.add_argument(
            "--decoding",
            choices=DECODINGS,
            default=None,
            help="consistency model or magnitude preview + Griffin-Lim (default: the model's)",
        )
        p.add_argument("--seed", type=SEED, default=0, help="seed of the decoding noise")
        p.add_argument("--subtype", default=None, help="soundfile subtype: PCM_16, PCM_24, FLOAT")

    p = sub.add_parser("train", help="train a CAE on a folder of audio")
    p.add_argument("--data", type=Path, required=True, help="folder of audio files")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed if it exists)")
    p.add_argument(
        "--preset", default="diffariff-tiny", choices=sorted(PRESETS), help="model size and decoder"
    )
    p.add_argument("--steps", type=COUNT, default=100_000, help="optimizer steps")
    p.add_argument("--batch-size", type=COUNT, default=16, help="global batch")
    p.add_argument(
        "--crop-latents", type=COUNT, default=None, help="crop in latent frames (model default)"
    )
    p.add_argument("--lr", type=POSITIVE, default=1e-4, help="peak learning rate")
    p.add_argument("--warmup-steps", type=SIZE, default=1000, help="linear warm-up steps")
    p.add_argument("--checkpoint-every", type=COUNT, default=1000, help="steps between checkpoints")
    p.add_argument("--log-every", type=COUNT, default=10, help="steps between log lines")
    p.add_argument("--seed", type=SEED, default=0, help="training seed")
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        help="checkpoint folder whose weights start the run (fine-tuning; the preset may "
        "add a head)",
    )
    p.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="PREFIX",
        help="parameter-name prefix not trained, e.g. encoder (repeatable)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("encode", help="audio files -> .npy latents")
    model_args(p)
    p.add_argument("inputs", nargs="+", help="audio files")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help=".npy latents -> audio files")
    model_args(p)
    audio_out(p)
    p.add_argument("inputs", nargs="+", help=".npy latent files")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--format", default="wav", choices=("wav", "flac"), help="audio format of the files"
    )
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("roundtrip", help="encode and decode one file")
    model_args(p)
    audio_out(p)
    p.add_argument("input", help="audio file")
    p.add_argument("--out", type=Path, required=True, help="output audio file")
    p.set_defaults(func=cmd_roundtrip)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with one message on bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:  # a flag out of its range, a missing argument, ...
        print(error, file=sys.stderr)
        return 2
    try:
        _check_device(args.device)
        code: int = args.func(args)
    except (CLIError, AudioError, OSError, ValueError) as error:
        # Bad input or an unlucky machine (a full disk, a locked run): one line, exit 2.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        message = "; ".join(lines) or type(error).__name__
        print(f"openriff-cae {args.command}: error: {message}", file=sys.stderr)
        return 2
    return code


def _check_device(name: str) -> None:
    """Refuse a device name torch does not know, or CUDA where torch sees no GPU."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise CLIError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not (
        torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    ):
        raise CLIError(f"device {name!r}: torch sees no such CUDA GPU on this machine")
    if device.type not in ("cpu", "cuda"):
        raise CLIError(f"device {name!r} is not supported: use cpu or cuda")


if __name__ == "__main__":
    sys.exit(main())

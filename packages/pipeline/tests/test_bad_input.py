"""The bad-input corpus: every command refuses damaged, hostile or impossible input.

Each case builds its input in a fresh folder and runs one command of the four CLIs
(``openriff``, ``openriff-cae``, ``openriff-clap-bridge``, ``openriff-metrics``). A refusal
must be: exit code 2; exactly one line on stderr naming the problem (no traceback, no
advice to unpickle with ``weights_only=False``); the file system exactly as it was (no
run folder, no output, no temporary left behind); and nothing a crafted file carries
ever runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openriff.cae.cli import main as cae_main
from openriff.clap_bridge.cli import main as bridge_main
from openriff.metrics.cli import main as metrics_main
from openriff.pipeline.cli import main

RATE = 48_000
MAINS: dict[str, Callable[[list[str]], int]] = {
    "openriff": main,
    "openriff-cae": cae_main,
    "openriff-clap-bridge": bridge_main,
    "openriff-metrics": metrics_main,
}


class Payload:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@dataclass(frozen=True)
class Assets:
    """Inputs shared by the cases (read-only: a case copies what it damages)."""

    bundle: Path
    prepared: Path
    run: Path  # a finished one-step `train ldm` run on ``prepared``
    codec_run: Path  # a finished one-step `openriff-cae train` run
    codec_audio: Path
    context: Path
    sidecar: Path


@dataclass(frozen=True)
class Case:
    name: str
    cli: str
    setup: Callable[[Path, Assets], list[str]]
    expect: str  # a regular expression the one line must match


def _wav(path: Path, seconds: float = 1.0) -> Path:
    t = np.arange(round(seconds * RATE)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 110 * t)).astype(np.float32), RATE)
    return path


def _copy(source: Path, tmp: Path) -> Path:
    target = tmp / source.name
    shutil.copytree(source, target)
    return target


def _gen(bundle: Path, tmp: Path, *extra: str) -> list[str]:
    return ["generate", "--bundle", str(bundle), "--steps", "1", "--quiet", *extra]


def _edit_json(path: Path, edit: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    result = edit(data)
    path.write_text(json.dumps(data if result is None else result))


def _bundle_with(edit: Callable[[Path], None]) -> Callable[[Path, Assets], list[str]]:
    def setup(tmp: Path, a: Assets) -> list[str]:
        bundle = _copy(a.bundle, tmp)
        edit(bundle)
        return _gen(bundle, tmp, "--duration", "1", "--out", str(tmp / "out.wav"))

    return setup


def _truncate(path: Path, keep: int = 40) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _crafted(path: Path, marker: Path, **extra: object) -> None:
    torch.save({**extra, "payload": Payload(marker)}, path)


def _resume_crafted(tmp: Path, a: Assets) -> list[str]:
    run = _copy(a.run, tmp)
    (checkpoint,) = sorted((run / "checkpoints").glob("step-*"))
    _crafted(checkpoint / "trainer.pt", tmp / "pwned", step=1)
    settings = json.loads((run / "train.json").read_text())
    steps, batch = str(settings["steps"]), str(settings["batch_size"])
    return ["train", "ldm", "--data", str(a.prepared), "--out", str(run), "--steps", steps,
            "--batch-size", batch, "--quiet"]  # fmt: skip


def _cae_resume_crafted(tmp: Path, a: Assets) -> list[str]:
    run = _copy(a.codec_run, tmp)
    (checkpoint,) = sorted((run / "checkpoints").glob("step-*"))
    _crafted(checkpoint / "trainer.pt", tmp / "pwned", step=1)
    return ["train", "--data", str(a.codec_audio), "--out", str(run), *CAE_TRAIN]


def _damaged_shard(tmp: Path, a: Assets) -> list[str]:
    prepared = _copy(a.prepared, tmp)
    _truncate(sorted((prepared / "train").glob("*.safetensors"))[0])
    return ["train", "ldm", "--data", str(prepared), "--out", str(tmp / "run"), "--quiet"]


def _config(text: str) -> Callable[[Path, Assets], list[str]]:
    def setup(tmp: Path, a: Assets) -> list[str]:
        (tmp / "train.json").write_text(text)
        return ["train", "ldm", "--data", str(a.prepared), "--out", str(tmp / "run"),
                "--config", str(tmp / "train.json"), "--quiet"]  # fmt: skip

    return setup


def _sidecar(record: object) -> Callable[[Path, Assets], list[str]]:
    def setup(tmp: Path, a: Assets) -> list[str]:
        (tmp / "s.json").write_text(json.dumps(record))
        return ["rerun", str(tmp / "s.json"), "--out", str(tmp / "again.wav")]

    return setup


def _latents(array: np.ndarray, meta: object = None) -> Callable[[Path, Assets], list[str]]:
    def setup(tmp: Path, a: Assets) -> list[str]:
        np.save(tmp / "z.npy", array)
        if meta is not None:
            (tmp / "z.json").write_text(json.dumps(meta))
        codec = a.bundle / "codec"
        return ["decode", "--model", str(codec), str(tmp / "z.npy"), "--out", str(tmp / "o")]

    return setup


def _encode_two_broken(tmp: Path, a: Assets) -> list[str]:
    (tmp / "broken.wav").write_bytes(b"RIFF not really a wave file")
    return ["encode", "--model", str(a.bundle / "codec"), str(a.context), str(tmp / "broken.wav"),
            "--out", str(tmp / "z")]  # fmt: skip


def _encode_same_name(tmp: Path, a: Assets) -> list[str]:
    for folder in ("a", "b"):
        (tmp / folder).mkdir()
        _wav(tmp / folder / "clip.wav", 0.5)
    return ["encode", "--model", str(a.bundle / "codec"), str(tmp / "a" / "clip.wav"),
            str(tmp / "b" / "clip.wav"), "--out", str(tmp / "z")]  # fmt: skip


def _cae_train_broken(tmp: Path, a: Assets) -> list[str]:
    data = tmp / "audio"
    data.mkdir()
    for i in range(2):
        (data / f"clip{i}.wav").write_bytes(b"RIFF not really a wave file")
    return ["train", "--data", str(data), "--out", str(tmp / "run"), *CAE_TRAIN]


def _kd(tmp: Path, *extra: str) -> list[str]:
    rng = np.random.default_rng(0)
    for name in ("ref", "cand"):
        np.save(tmp / f"{name}.npy", rng.standard_normal((20, 4)))
    return ["kd", str(tmp / "ref.npy"), str(tmp / "cand.npy"), "--subsets", "2",
            "--subset-size", "10", *extra]  # fmt: skip


def _fad(tmp: Path, *extra: str) -> list[str]:
    return ["fad", *_kd(tmp)[1:3], *extra]


def _rate(path: Path, rate: int) -> Path:
    sf.write(path, np.zeros(rate, np.float32), rate)
    return path


def _channels(path: Path, channels: int) -> Path:
    sf.write(path, np.zeros((RATE, channels), np.float32), RATE)
    return path


def _huge_header(tmp: Path, a: Assets) -> list[str]:
    path = tmp / "z.npy"
    with path.open("wb") as file:  # a header claiming 64 x 10^9 floats, then 64 bytes
        np.lib.format.write_array_header_1_0(
            file, {"descr": "<f4", "fortran_order": False, "shape": (64, 10**9)}
        )
        file.write(b"\0" * 64)
    return ["decode", "--model", str(a.bundle / "codec"), str(path), "--out", str(tmp / "o")]


def _codec_json(edit: Callable[[dict], object]) -> Callable[[Path, Assets], list[str]]:
    def setup(tmp: Path, a: Assets) -> list[str]:
        codec = _copy(a.bundle / "codec", tmp)
        _edit_json(codec / "config.json", edit)
        return ["roundtrip", "--model", str(codec), str(a.context), "--out", str(tmp / "r.wav")]

    return setup


def _fad_existing(tmp: Path, a: Assets) -> list[str]:
    rng = np.random.default_rng(0)
    for name in ("ref", "cand"):
        np.save(tmp / f"{name}.npy", rng.standard_normal((20, 4)))
    (tmp / "saved.npz").write_bytes(b"keep me")
    return ["fad", str(tmp / "ref.npy"), str(tmp / "cand.npy"), "--save-reference",
            str(tmp / "saved.npz")]  # fmt: skip


def _crafted_clap(tmp: Path, a: Assets) -> list[str]:
    _crafted(tmp / "clap.pt", tmp / "pwned")
    (tmp / "items.json").write_text(json.dumps([{"audio": str(a.context), "text": "bass"}]))
    return ["embed", "--manifest", str(tmp / "items.json"), "--clap", str(tmp / "clap.pt"),
            "--out", str(tmp / "pairs.safetensors"), "--cache", str(tmp / "cache")]  # fmt: skip


def _crafted_music2latent(tmp: Path, a: Assets) -> list[str]:
    _crafted(tmp / "music2latent.pt", tmp / "pwned", gen_state_dict={})
    return ["prepare", "--data", str(tmp), "--out", str(tmp / "prepared"), "--codec",
            str(tmp / "music2latent.pt"), "--quiet"]  # fmt: skip


def _long_name(tmp: Path, a: Assets) -> list[str]:
    return _gen(a.bundle, tmp, "--duration", "1", "--out", str(tmp / ("x" * 300 + ".wav")))


def _song_json_everywhere(tmp: Path, a: Assets) -> list[str]:
    data = tmp / "songs"
    for i, text in enumerate(('["a list"]', '{"stems": {"bass.wav": "bass"}}')):
        song = data / f"song_{i}"
        song.mkdir(parents=True)
        _wav(song / "bass.wav")
        _wav(song / "keys.wav")
        (song / "song.json").write_text(text)
    return ["prepare", "--data", str(data), "--out", str(tmp / "prepared"), "--codec",
            str(a.bundle / "codec"), "--quiet"]  # fmt: skip


CAE_TRAIN = ["--preset", "diffariff-tiny", "--steps", "1", "--batch-size", "2", "--quiet"]
CUDA = "cuda:99" if torch.cuda.is_available() else "cuda"

CASES = [
    # Damaged or hostile model files.
    Case("bundle truncated denoiser", "openriff", _bundle_with(
        lambda b: [_truncate(p) for p in (b / "denoiser").glob("*.safetensors")]),
        r"denoiser/\w+\.safetensors is not a readable safetensors"),
    Case("bundle garbage codec weights", "openriff", _bundle_with(
        lambda b: [p.write_bytes(b"garbage" * 20) for p in (b / "codec").glob("*.safetensors")]),
        r"codec/\w+\.safetensors is not a readable safetensors"),
    Case("bundle.json is a list", "openriff", _bundle_with(
        lambda b: (b / "bundle.json").write_text("[1, 2]")), r"must hold a JSON object"),
    Case("bundle.json is not JSON", "openriff", _bundle_with(
        lambda b: (b / "bundle.json").write_text("{oops")), r"not valid JSON"),
    Case("bundle.json null denoiser", "openriff", _bundle_with(
        lambda b: _edit_json(b / "bundle.json", lambda d: d.update(denoiser=None))),
        r"'denoiser' must be str"),
    Case("bundle.json missing codec", "openriff", _bundle_with(
        lambda b: _edit_json(b / "bundle.json", lambda d: d.__delitem__("codec"))),
        r"'codec' is missing"),
    Case("bundle.json version as text", "openriff", _bundle_with(
        lambda b: _edit_json(b / "bundle.json", lambda d: d.update(version="1"))),
        r"'version' must be int"),
    Case("bundle.json codec as a list", "openriff", _bundle_with(
        lambda b: _edit_json(b / "bundle.json", lambda d: d.update(codec=["codec"]))),
        r"'codec' must be dict"),
    Case("bundle.json codec escapes the bundle", "openriff", _bundle_with(
        lambda b: _edit_json(b / "bundle.json", lambda d: d["codec"].update(path="../../x"))),
        r"lies outside the bundle"),
    Case("denoiser config with a text number", "openriff", _bundle_with(
        lambda b: _edit_json(b / "denoiser" / "config.json",
                             lambda d: d["model"].update(sigma_max="big"))),
        r"sigma_max: expected a number"),
    Case("denoiser config with a null model", "openriff", _bundle_with(
        lambda b: _edit_json(b / "denoiser" / "config.json", lambda d: d.update(model=None))),
        r"'model' must be an object, got None"),
    Case("denoiser config list of overrides", "openriff", _bundle_with(
        lambda b: _edit_json(b / "denoiser" / "config.json",
                             lambda d: d["model"].update(overrides=[1]))),
        r"'model\.overrides' must be an object"),
    Case("denoiser config shapes unlike weights", "openriff", _bundle_with(
        lambda b: _edit_json(b / "denoiser" / "config.json",
                             lambda d: d["model"]["overrides"].update(context_channels=7))),
        r"does not match .*config\.json"),
    Case("codec config is null", "openriff-cae", _codec_json(lambda d: d.update(config=None)),
         r"expected a JSON object"),
    Case("codec config is a list", "openriff-cae", _codec_json(lambda d: [d]),
         r"must hold a JSON object"),
    Case("codec config with a text width", "openriff-cae",
         _codec_json(lambda d: d["config"].update(latent_dim="64")), r"expected a whole number"),
    Case("prepared shard truncated", "openriff", _damaged_shard,
         r"not a readable prepared shard"),
    Case("train ldm resumes a crafted trainer.pt", "openriff", _resume_crafted,
         r"trainer\.pt holds Python objects.*refused"),
    Case("cae train resumes a crafted trainer.pt", "openriff-cae", _cae_resume_crafted,
         r"trainer\.pt holds Python objects.*refused"),
    Case("crafted LAION-CLAP checkpoint", "openriff-clap-bridge", _crafted_clap,
         r"clap\.pt holds Python objects"),
    Case("crafted music2latent checkpoint", "openriff", _crafted_music2latent,
         r"music2latent\.pt holds Python objects"),
    # Settings of the wrong type or range.
    Case("train ldm config with a text number", "openriff", _config('{"lr": "fast"}'),
         r"TrainConfig\.lr: expected a number"),
    Case("train ldm config is a list", "openriff", _config("[1]"), r"expected a JSON object"),
    Case("train ldm lr nan", "openriff", lambda t, a: ["train", "ldm", "--data", str(a.prepared),
         "--out", str(t / "run"), "--lr", "nan", "--quiet"],
         r"argument --lr: must be a finite number > 0, got nan"),
    Case("device bogus", "openriff", lambda t, a: _gen(a.bundle, t, "--duration", "1",
         "--out", str(t / "o.wav"), "--device", "bogus"), r"unknown device 'bogus'"),
    Case("device cuda without a GPU", "openriff", lambda t, a: _gen(a.bundle, t, "--duration",
         "1", "--out", str(t / "o.wav"), "--device", CUDA), r"CUDA GPU"),
    Case("cae device bogus", "openriff-cae", lambda t, a: ["roundtrip", "--model",
         str(a.bundle / "codec"), str(a.context), "--out", str(t / "r.wav"), "--device",
         "bogus"], r"unknown device"),
    Case("duration inf", "openriff", lambda t, a: _gen(a.bundle, t, "--duration", "inf",
         "--out", str(t / "o.wav")), r"argument --duration: must be a finite number > 0, got inf"),
    Case("duration 1e9", "openriff", lambda t, a: _gen(a.bundle, t, "--duration", "1e9",
         "--out", str(t / "o.wav")), r"would need about .* GiB"),
    Case("inpaint end 1e9", "openriff", lambda t, a: ["inpaint", "--bundle", str(a.bundle),
         "--stem", str(a.context), "--start", "0.5", "--end", "1e9", "--out",
         str(t / "o.wav")], r"would need about .* GiB"),
    Case("loop of 100000 bars", "openriff", lambda t, a: ["loop", "--bundle", str(a.bundle),
         "--bars", "100000", "--out", str(t / "o.wav")], r"would need about .* GiB"),
    Case("100000 candidates", "openriff", lambda t, a: _gen(a.bundle, t, "--duration", "1",
         "--candidates", "100000", "--out", str(t / "o.wav")), r"at most 64 stems"),
    Case("steps 0", "openriff", lambda t, a: _gen(a.bundle, t, "--duration", "1", "--out",
         str(t / "o.wav"), "--steps", "0"),
         r"argument --steps: must be an integer in \[1, 1000\], got 0"),
    Case("context guidance nan", "openriff", lambda t, a: _gen(a.bundle, t, "--duration", "1",
         "--out", str(t / "o.wav"), "--cfg-context", "nan"),
         r"argument --cfg-context: must be a finite number in \[0, 20\], got nan"),
    Case("data synth of no songs", "openriff", lambda t, a: ["data", "synth", "--songs", "0",
         "--out", str(t / "songs")], r"argument --songs: must be an integer >= 1, got 0"),
    Case("recipe override of the wrong type", "openriff", lambda t, a: ["train", "recipe",
         "--run", str(t / "run"), "--set", "codec.steps=abc"], r"expected a whole number"),
    Case("recipe override of ldm settings", "openriff", lambda t, a: ["train", "recipe",
         "--run", str(t / "run"), "--set", 'ldm.settings={"lr": -1}'], r"lr must be a finite"),
    Case("song.json broken in every song", "openriff", _song_json_everywhere,
         r"no usable songs.*expected a JSON object.*must be an object"),
    # Outputs.
    Case("the same file for --out and --mix", "openriff", lambda t, a: _gen(a.bundle, t,
         "--context", str(a.context), "--out", str(t / "o.wav"), "--mix", str(t / "o.wav")),
         r"named for two outputs"),
    Case("an output name over 255 bytes", "openriff", _long_name, r"longer than the 255"),
    Case("fad --save-reference onto a file", "openriff-metrics", _fad_existing,
         r"saved\.npz exists; pass --overwrite"),
    # Sidecars and latents.
    Case("sidecar is a JSON list", "openriff", _sidecar([1, 2]), r"holds a JSON object"),
    Case("sidecar of a training command", "openriff", _sidecar(
        {"command": ["openriff", "data", "synth", "--songs", "1", "--out", "x"],
         "settings": {"seed": 1}}), r"rerun repeats only generation commands"),
    Case("latents of an object dtype", "openriff-cae",
         _latents(np.array([[None] * 4] * 64, dtype=object)), r"real numbers .* got object"),
    Case("latents claiming a huge shape", "openriff-cae", _huge_header,
         r"expected \[64, T\]|shorter than its header"),
    Case("latents with NaN", "openriff-cae", _latents(np.full((64, 4), np.nan, np.float32)),
         r"NaN"),
    Case("latents with an odd length record", "openriff-cae",
         _latents(np.zeros((64, 4), np.float32), {"samples": 10**12}), r"'samples' must be"),
    Case("latents with a text length record", "openriff-cae",
         _latents(np.zeros((64, 4), np.float32), {"samples": "abc"}), r"'samples' must be"),
    Case("cae train on an empty folder", "openriff-cae", lambda t, a: [
        "train", "--data", str(t), "--out", str(t / "run"), *CAE_TRAIN], r"no audio files"),
    # Issue 27: values that make no sense, partial outputs, odd audio.
    Case("cae decode steps -1", "openriff-cae", lambda t, a: [*_latents(
        np.zeros((64, 4), np.float32))(t, a), "--steps", "-1"],
        r"argument --steps: must be an integer >= 1, got -1"),
    Case("cae roundtrip steps 0", "openriff-cae", lambda t, a: ["roundtrip", "--model",
        str(a.bundle / "codec"), str(a.context), "--out", str(t / "r.wav"), "--steps", "0"],
        r"argument --steps: must be an integer >= 1, got 0"),
    Case("cae encode whose second input is broken", "openriff-cae", _encode_two_broken,
        r"broken\.wav: cannot read audio"),
    Case("cae encode of two inputs of one name", "openriff-cae", _encode_same_name,
        r"would both write .*clip\.npy"),
    Case("cae train on a missing folder", "openriff-cae", lambda t, a: [
        "train", "--data", str(t / "nowhere"), "--out", str(t / "run"), *CAE_TRAIN],
        r"nowhere: not a folder"),
    Case("cae train on a folder of broken files", "openriff-cae", _cae_train_broken,
        r"cannot read audio"),
    Case("kd of degree -1", "openriff-metrics", lambda t, a: _kd(t, "--degree", "-1"),
        r"argument --degree: must be an integer >= 1, got -1"),
    Case("kd of gamma nan", "openriff-metrics", lambda t, a: _kd(t, "--gamma", "nan"),
        r"argument --gamma: must be a finite number > 0, got nan"),
    Case("bridge sample cfg nan", "openriff-clap-bridge", lambda t, a: ["sample", "--bridge",
        str(a.bundle / "bridge"), "--unconditional", "2", "--cfg", "nan", "--out",
        str(t / "e.npy")], r"argument --cfg: must be a finite number >= 0, got nan"),
    Case("bridge sample of 0 per prompt", "openriff-clap-bridge", lambda t, a: ["sample",
        "--bridge", str(a.bundle / "bridge"), "--unconditional", "2", "--n", "0", "--out",
        str(t / "e.npy")], r"argument --n: must be an integer >= 1, got 0"),
    Case("train ldm lr -1", "openriff", lambda t, a: ["train", "ldm", "--data",
        str(a.prepared), "--out", str(t / "run"), "--lr", "-1", "--quiet"],
        r"argument --lr: must be a finite number > 0, got -1"),
    Case("context at 4 kHz", "openriff", lambda t, a: _gen(a.bundle, t, "--context",
        str(_rate(t / "low.wav", 4000)), "--out", str(t / "o.wav")), r"sample rate 4000 Hz"),
    Case("context of 9 channels", "openriff", lambda t, a: _gen(a.bundle, t, "--context",
        str(_channels(t / "nine.wav", 9)), "--out", str(t / "o.wav")),
        r"9 channels are not supported"),
    Case("fad of negative batch size", "openriff-metrics", lambda t, a: _fad(t,
        "--batch-size", "-5"), r"argument --batch-size: must be an integer >= 0, got -5"),
    Case("corpus with validation 2", "openriff", lambda t, a: ["data", "corpus", "--out",
        str(t / "midi"), "--validation", "2"],
        r"argument --validation: must be a finite number in \[0, 1\), got 2"),
    Case("prepare with validation 2", "openriff", lambda t, a: ["prepare", "--data",
        str(t), "--out", str(t / "prep"), "--codec", str(a.bundle / "codec"),
        "--validation", "2"], r"argument --validation: must be a finite number in \[0, 1\), got 2"),
    Case("ui on port 0", "openriff", lambda t, a: ["ui", "--bundle", str(a.bundle),
        "--port", "0"], r"argument --port: must be an integer in \[1, 65535\], got 0"),
]  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root`` with (is a folder, size, modification time)."""
    return {
        str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory, bundle: Path) -> Assets:
    from helpers import prepare_args, synth_songs

    root = tmp_path_factory.mktemp("assets")
    songs = synth_songs(root / "songs", 2)
    prepared = root / "prepared"
    assert main(prepare_args(songs, prepared, codec=bundle / "codec")) == 0
    run = root / "run"
    assert main(["train", "ldm", "--data", str(prepared), "--out", str(run), "--steps", "1",
                 "--batch-size", "2", "--quiet"]) == 0  # fmt: skip
    audio = root / "audio"
    audio.mkdir()
    for i in range(2):
        _wav(audio / f"clip{i}.wav", 2.0)
    codec_run = root / "codec-run"
    assert cae_main(["train", "--data", str(audio), "--out", str(codec_run), *CAE_TRAIN]) == 0
    context = _wav(root / "context.wav", 1.2)
    sidecar = root / "g" / "stem.json"
    argv = _gen(bundle, root, "--context", str(context), "--out", str(root / "g" / "stem.wav"))
    assert main(argv) == 0
    return Assets(bundle, prepared, run, codec_run, audio, context, sidecar)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_in_one_line_and_changes_nothing(
    case: Case, assets: Assets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = case.setup(tmp_path, assets)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = MAINS[case.cli](argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{case.cli} "), lines[0]
    assert re.search(case.expect, lines[0]), lines[0]
    assert "Traceback" not in err
    assert "weights_only=False" not in err
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "pwned").exists()  # nothing a crafted file carries ran


HOLDER = """
import sys, time
from openriff.latent_diffusion.files import writer_lock
with writer_lock(sys.argv[1:]):
    print("held", flush=True)
    time.sleep(120)
"""


@contextmanager
def another_writer(*targets: Path) -> Iterator[int]:
    """Another process holding the writer's lock of ``targets``; yields its pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *map(str, targets)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        yield process.pid
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("command", ["generate", "train ldm", "data synth", "cae train"])
def test_a_second_writer_is_refused_naming_the_lock(
    command: str, assets: Assets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    runs = {
        "generate": ("openriff", out / "o.wav",
                     _gen(assets.bundle, tmp_path, "--duration", "1", "--out", str(out / "o.wav"))),
        "train ldm": ("openriff", out, ["train", "ldm", "--data", str(assets.prepared), "--out",
                                        str(out), "--steps", "1", "--quiet"]),
        "data synth": ("openriff", out, ["data", "synth", "--songs", "1", "--out", str(out)]),
        "cae train": ("openriff-cae", out, ["train", "--data", str(assets.codec_audio), "--out",
                                            str(out), *CAE_TRAIN]),
    }  # fmt: skip
    cli, locked, argv = runs[command]
    with another_writer(locked) as pid:
        before = snapshot(tmp_path)
        capsys.readouterr()
        assert MAINS[cli](argv) == 2
        err = capsys.readouterr().err.strip()
        assert snapshot(tmp_path) == before
    assert "\n" not in err
    assert f"being written by another process (pid {pid}, lock " in err
    assert f".{locked.name}.lock" in err
    # Once the other writer is gone, the same command runs.
    assert MAINS[cli](argv) == 0


def test_a_bad_song_json_is_reported_and_skipped_not_fatal(
    assets: Assets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import synth_songs

    songs = synth_songs(tmp_path / "songs", 3)
    (songs / "song_0001" / "song.json").write_text('{"stems": {"bass.wav": {"tags": 5}}}')
    out = tmp_path / "prepared"
    capsys.readouterr()
    argv = ["prepare", "--data", str(songs), "--out", str(out), "--codec",
            str(assets.bundle / "codec"), "--window-latents", "8", "--hop-seconds", "0.5",
            "--reference-seconds", "0.5", "--validation", "0", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "song_0001/song.json: unusable (stems['bass.wav'].tags must be a list" in printed
    shards = sorted(p.stem for p in (out / "train").glob("*.safetensors"))
    assert len(shards) == 2
    assert not any("song_0001" in name for name in shards)


def test_a_full_disk_leaves_no_partial_output(
    assets: Assets,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import soundfile

    real = soundfile.SoundFile.write

    def full(self: soundfile.SoundFile, data: np.ndarray) -> None:
        real(self, data[:100])  # part of it reached the disk
        raise OSError(28, "No space left on device", self.name)

    monkeypatch.setattr(soundfile.SoundFile, "write", full)
    out = tmp_path / "o"
    argv = _gen(assets.bundle, tmp_path, "--context", str(assets.context), "--out",
                str(out / "stem.wav"), "--mix", str(out / "mix.wav"))  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("openriff generate: error: [Errno 28] No space left on device")
    assert "\n" not in err
    assert list(tmp_path.iterdir()) == []  # no stem, no mix, no temporary, no lock, no folder

"""Outputs and installed bundles: the user's umask, and replacement that never loses one."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openriff.pipeline.cli import main
from openriff.pipeline.train.recipe import slim_bundle


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_generated_files_respect_the_umask(bundle: Path, tmp_path: Path, mask: int) -> None:
    context = tmp_path / "context.wav"
    t = np.arange(48_000) / 48_000
    sf.write(context, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48_000)
    out = tmp_path / "new" / "stem.wav"
    mix = tmp_path / "new" / "mix.wav"
    argv = ["generate", "--bundle", str(bundle), "--steps", "1", "--quiet", "--context",
            str(context), "--out", str(out), "--mix", str(mix), "--plot"]  # fmt: skip
    with umask(mask):
        assert main(argv) == 0
    written = sorted(out.parent.iterdir())
    assert [p.name for p in written] == ["mix.wav", "stem.json", "stem.png", "stem.wav"]
    assert {mode(p) for p in written} == {0o666 & ~mask}
    assert mode(out.parent) == 0o777 & ~mask


def fake_bundle(folder: Path, megabytes: float) -> Path:
    (folder / "denoiser").mkdir(parents=True)
    (folder / "bundle.json").write_text(json.dumps({"format": "openriff-accompaniment"}))
    (folder / "denoiser" / "model.safetensors").write_bytes(b"m" * round(megabytes * 2**20))
    (folder / "denoiser" / "ema.safetensors").write_bytes(b"e" * round(megabytes * 2**20))
    return folder


def test_installing_a_bundle_replaces_the_old_one_whole_and_with_the_umask(
    tmp_path: Path,
) -> None:
    installed = fake_bundle(tmp_path / "installed", 0.1)
    new = fake_bundle(tmp_path / "new", 0.2)
    log = tmp_path / "recipe-log.json"
    log.write_text("{}")
    # A failure while the new bundle is written (here: over its size budget) keeps the old.
    with pytest.raises(ValueError, match=r"over the 0\.1 MB budget"):
        slim_bundle(new, installed, {"recipe-log.json": log}, max_megabytes=0.1)
    assert (installed / "denoiser" / "ema.safetensors").read_bytes()[:1] == b"e"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["installed", "new", "recipe-log.json"]
    with umask(0o022):
        slim_bundle(new, installed, {"recipe-log.json": log}, 1.0, None, {"min_steps": 3})
    assert json.loads((installed / "bundle.json").read_text())["min_steps"] == 3
    files = sorted(str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file())
    assert files == ["bundle.json", "denoiser/model.safetensors", "recipe-log.json"]
    assert (installed / "denoiser" / "model.safetensors").stat().st_size == round(0.2 * 2**20)
    assert (installed / "denoiser" / "model.safetensors").read_bytes()[:1] == b"e"  # the EMA
    assert mode(installed) == 0o755
    assert mode(installed / "denoiser") == 0o755
    assert {mode(p) for p in installed.rglob("*") if p.is_file()} == {0o644}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["installed", "new", "recipe-log.json"]

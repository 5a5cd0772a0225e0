"""The generation commands of ``openriff`` on a tiny bundle: outputs, sidecars, exact
re-runs, every control, and one clear message for each kind of bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openriff.pipeline.cli import main

RATE = 48_000


def tone(seconds: float, freq: float = 110.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    paths = {name: root / f"{name}.wav" for name in ("context", "stem", "ref", "stereo44")}
    sf.write(paths["context"], tone(1.2, 220.0), RATE)
    sf.write(paths["stem"], tone(1.2), RATE)
    sf.write(paths["ref"], tone(0.8, 330.0), RATE)
    sf.write(paths["stereo44"], np.stack([tone(1.0, 220.0, 44_100)] * 2, 1), 44_100)
    return paths


def fast(bundle: Path) -> list[str]:
    return ["--bundle", str(bundle), "--steps", "2", "--quiet"]


def test_generate_writes_stem_mix_sidecar_plot_and_reruns_exactly(
    bundle: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "a"
    args = ["generate", "--context", str(files["stereo44"]), "--prompt", "slap bass"]
    assert main([*args, *fast(bundle), "--out", str(out / "stem.wav"),
                 "--mix", str(out / "mix.wav"), "--plot"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["mix.wav", "stem.json", "stem.png", "stem.wav"]
    info = sf.info(out / "stem.wav")
    assert (info.samplerate, info.channels, info.frames) == (RATE, 2, RATE)  # 1 s at 44.1 kHz
    assert info.subtype == "PCM_24"
    assert sf.info(out / "mix.wav").frames == RATE
    assert (out / "stem.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((out / "stem.json").read_text())
    seed = record["settings"]["seed"]
    assert record["settings"]["conditioning"] == "CLAP_T + context"
    assert record["settings"]["steps"] == 2
    assert len(record["model"]["sha256"]) == 64
    assert record["outputs"]["stems"] == ["stem.wav"]
    # The recorded command with the recorded seed reproduces the file bit for bit.
    again = [*record["command"][1:], "--seed", str(seed)]
    again[again.index("--out") + 1] = str(tmp_path / "b" / "stem.wav")
    again[again.index("--mix") + 1] = str(tmp_path / "b" / "mix.wav")
    assert main(again) == 0
    assert (tmp_path / "b" / "stem.wav").read_bytes() == (out / "stem.wav").read_bytes()
    assert (tmp_path / "b" / "mix.wav").read_bytes() == (out / "mix.wav").read_bytes()
    # `openriff rerun` does the same from the sidecar alone.
    rerun = ["rerun", str(out / "stem.json"), "--out", str(tmp_path / "c" / "again.wav")]
    assert main(rerun) == 0
    assert (tmp_path / "c" / "again.wav").read_bytes() == (out / "stem.wav").read_bytes()
    assert (tmp_path / "c" / "again.png").is_file()  # --plot came along
    assert main(rerun) == 2  # exists
    assert main(["rerun", str(out / "stem.wav"), "--out", str(tmp_path / "d.wav")]) == 2


def test_a_rerun_works_from_another_folder_and_refuses_another_model(
    bundle: Path,
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    shutil.copy(files["context"], work / "context.wav")
    monkeypatch.chdir(work)
    monkeypatch.setenv("OPENRIFF_BUNDLE", str(bundle))  # the default model, as users have it
    args = ["generate", "--context", "context.wav", "--steps", "2", "--quiet"]
    assert main([*args, "--out", "out/stem.wav", "--seed", "5"]) == 0
    record = json.loads((work / "out" / "stem.json").read_text())
    command = record["command"]
    assert command[command.index("--context") + 1] == str(work / "context.wav")
    assert command[command.index("--out") + 1] == str(work / "out" / "stem.wav")
    monkeypatch.chdir(elsewhere)  # relative paths would name nothing here
    assert main(["rerun", str(work / "out" / "stem.json"), "--out", "again.wav"]) == 0
    assert (elsewhere / "again.wav").read_bytes() == (work / "out" / "stem.wav").read_bytes()
    again = json.loads((elsewhere / "again.json").read_text())["command"]
    assert again[again.index("--out") + 1] == str(elsewhere / "again.wav")
    # The default model changed since: refused, naming both, unless --force.
    changed = tmp_path / "changed"
    shutil.copytree(bundle, changed)
    (changed / "bundle.json").write_text((changed / "bundle.json").read_text() + "\n")
    monkeypatch.setenv("OPENRIFF_BUNDLE", str(changed))
    capsys.readouterr()
    rerun = ["rerun", str(work / "out" / "stem.json"), "--out", "b.wav"]
    assert main(rerun) == 2
    error = capsys.readouterr().err
    assert "the sidecar was made with another model" in error
    assert str(changed) in error
    assert not (elsewhere / "b.wav").exists()
    assert main([*rerun, "--force"]) == 0


def test_formats_and_candidates(bundle: Path, files: dict[str, Path], tmp_path: Path) -> None:
    base = ["generate", "--context", str(files["context"]), "--seed", "1", *fast(bundle)]
    assert main([*base, "--out", str(tmp_path / "s.flac"), "--bits", "16"]) == 0
    assert sf.info(tmp_path / "s.flac").subtype == "PCM_16"
    threads = torch.get_num_threads()
    try:  # --threads sets torch's CPU threads (a busy machine runs faster with fewer)
        floats = ["--out", str(tmp_path / "f.wav"), "--bits", "float", "--threads", "1"]
        assert main([*base, *floats]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert sf.info(tmp_path / "f.wav").subtype == "FLOAT"
    assert main([*base, "--out", str(tmp_path / "t.wav"), "--threads", "0"]) == 2
    assert not (tmp_path / "t.wav").exists()
    assert main([*base, "--out", str(tmp_path / "c.wav"), "--candidates", "2"]) == 0
    for name in ("c-1.wav", "c-2.wav"):
        assert sf.info(tmp_path / name).frames == round(1.2 * RATE)
    one, two = sf.read(tmp_path / "c-1.wav")[0], sf.read(tmp_path / "c-2.wav")[0]
    assert not np.array_equal(one, two)
    # Without a context: --duration.
    assert main(["generate", "--duration", "0.7", "--reference", str(files["ref"]), *fast(bundle),
                 "--out", str(tmp_path / "d.wav"), "--stereo-width", "0"]) == 0  # fmt: skip
    assert (sf.info(tmp_path / "d.wav").frames, sf.info(tmp_path / "d.wav").channels) == (
        round(0.7 * RATE),
        1,
    )


def test_every_control_command(bundle: Path, files: dict[str, Path], tmp_path: Path) -> None:
    stem, context, ref = str(files["stem"]), str(files["context"]), str(files["ref"])
    cases = [
        (["inpaint", "--stem", stem, "--start", "0.3", "--end", "0.6", "--context", context],
         "inpaint.wav", round(1.2 * RATE)),
        (["inpaint", "--stem", stem, "--start", "1.2", "--end", "2.0", "--prompt", "bass"],
         "outpaint.wav", 2 * RATE),
        (["vary", "--stem", stem, "--strength", "0.3", "--context", context],
         "vary.wav", round(1.2 * RATE)),
        (["loop", "--bars", "1", "--bpm", "150", "--prompt", "funk guitar"],
         "loop.wav", round(4 * 60 / 150 * RATE)),
        (["interpolate", "--from-prompt", "warm pad", "--to-reference", ref, "--points", "3",
          "--duration", "0.5"], "interp.wav", RATE // 2),
    ]  # fmt: skip
    for args, name, frames in cases:
        assert main([*args, *fast(bundle), "--seed", "0", "--out", str(tmp_path / name)]) == 0
        written = tmp_path / name
        targets = [written] if name != "interp.wav" else _numbered(written, 3)
        for path in targets:
            assert sf.info(path).frames == frames, name
            assert sf.info(path).channels == 2, name
        assert json.loads(written.with_suffix(".json").read_text())["settings"]["seed"] == 0
    song = tmp_path / "song"
    args = ["song", "--prompt", "drums", "--reference", ref, "--prompt", "bass"]
    args += ["--duration", "0.6"]
    assert main([*args, *fast(bundle), "--out", str(song), "--plot"]) == 0
    names = sorted(p.name for p in song.iterdir())
    assert names == ["mix.wav", "part-1.wav", "part-2.wav", "part-3.wav", "song.json", "song.png"]
    parts = [sf.read(song / f"part-{i}.wav")[0] for i in (1, 2, 3)]
    record = json.loads((song / "song.json").read_text())
    assert record["settings"]["parts"] == ["drums", ref, "bass"]
    gain = record["settings"]["mix_gain"]
    mixed = sf.read(song / "mix.wav")[0]
    np.testing.assert_allclose(mixed, sum(parts) * gain, atol=1e-4)  # 24-bit rounding


def _numbered(path: Path, count: int) -> list[Path]:
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def test_bad_input_gives_one_message_and_writes_nothing(
    bundle: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    sf.write(bad / "empty.wav", np.zeros((0, 1), dtype=np.float32), RATE)
    sf.write(bad / "nan.wav", np.full(RATE, np.nan, dtype=np.float32), RATE, subtype="FLOAT")
    sf.write(bad / "low.wav", tone(1.0, rate=4000), 4000)
    sf.write(bad / "nine.wav", np.zeros((RATE, 9), dtype=np.float32), RATE)
    (bad / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    (bad / "a-file").write_text("x")
    clap_free = tmp_path / "clap-free"
    shutil.copytree(bundle, clap_free)
    info = json.loads((clap_free / "bundle.json").read_text())
    info["clap"]["checkpoint"] = None
    (clap_free / "bundle.json").write_text(json.dumps(info))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    existing = out_dir / "existing.wav"
    sf.write(existing, tone(0.1), RATE)
    before = existing.read_bytes()
    ctx = str(files["context"])
    out = str(out_dir / "stem.wav")
    gen = ["generate", "--steps", "2", "--quiet"]
    b = ["--bundle", str(bundle)]
    cases = [
        ([*gen, *b, "--context", str(bad / "missing.wav"), "--out", out], "no such file"),
        ([*gen, *b, "--context", str(bad / "empty.wav"), "--out", out], "no audio samples"),
        ([*gen, *b, "--context", str(bad / "nan.wav"), "--out", out], "NaN"),
        ([*gen, *b, "--context", str(bad / "low.wav"), "--out", out], "sample rate 4000"),
        ([*gen, *b, "--context", str(bad / "nine.wav"), "--out", out], "9 channels"),
        ([*gen, *b, "--context", str(bad / "corrupt.wav"), "--out", out], "cannot read"),
        ([*gen, "--bundle", str(clap_free), "--context", ctx, "--prompt", "bass", "--out", out],
         "CLAP checkpoint"),
        ([*gen, *b, "--context", ctx, "--cfg-clap", "50", "--out", out],
         "argument --cfg-clap: must be a finite number in [0, 20], got 50"),
        ([*gen[:1], "--steps", "0", *b, "--context", ctx, "--out", out], "steps"),
        ([*gen, *b, "--context", ctx, "--stereo-width", "2", "--out", out],
         "argument --stereo-width: must be a finite number in [0, 1], got 2"),
        ([*gen, *b, "--context", ctx, "--out", str(existing)], "exists"),
        ([*gen, *b, "--context", ctx, "--out", str(bad / "a-file" / "x.wav")], "not a folder"),
        ([*gen, *b, "--context", ctx, "--out", str(out_dir / "stem.mp3")], ".wav or .flac"),
        ([*gen, *b, "--context", ctx, "--out", str(out_dir / "s.flac"), "--bits", "float"],
         "FLAC stores integers"),
        ([*gen, *b, "--duration", "1", "--mix", str(out_dir / "m.wav"), "--out", out],
         "--mix needs a --context"),
        ([*gen, "--context", ctx, "--out", out], "no model bundle"),
        (["inpaint", *b, "--stem", ctx, "--start", "2", "--end", "1", "--out", out],
         "--start must be before --end, got 2.0 and 1.0"),
        (["interpolate", *b, "--from-prompt", "a", "--duration", "1", "--out", out], "--to-"),
    ]  # fmt: skip
    monkeypatch.setenv("OPENRIFF_BUNDLE", str(tmp_path / "nowhere"))
    for args, message in cases:
        capsys.readouterr()
        assert main(args) == 2, message
        err = capsys.readouterr().err.strip()
        assert message in err, (message, err)
        assert len(err.splitlines()) == 1, err
        assert sorted(p.name for p in out_dir.iterdir()) == ["existing.wav"], message
    assert existing.read_bytes() == before
    assert main([*gen, *b, "--context", ctx, "--out", str(existing), "--overwrite"]) == 0
    assert existing.read_bytes() != before


def test_demo_accompanies_a_synthetic_song(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--bundle", str(bundle), "--out", str(out), "--bars", "2", "--steps", "2"]
    assert main([*args, "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["context.wav", "demo.json", "mix.wav", "spectrograms.png", "stem.wav"]
    context, rate = sf.read(out / "context.wav")
    stem = sf.read(out / "stem.wav")[0]
    record = json.loads((out / "demo.json").read_text())
    song = record["song"]
    assert rate == RATE
    bar = song["beats_per_bar"] * 60 / song["tempo"]  # quarter notes per bar
    assert len(context) == len(stem) == round(song["bars"] * bar * RATE)
    assert song["time_signature"] in ("4/4", "3/4", "6/8")
    assert song["style"] == "wide"
    expected = (context[:, None] + stem) * record["mix_gain"]
    np.testing.assert_allclose(sf.read(out / "mix.wav")[0], expected, atol=1e-4)
    assert record["settings"]["seed"] == 0
    assert record["command"][:2] == ["openriff", "demo"]
    assert set(record["seconds"]) == {"load", "render_context", "generate"}
    assert all(0 < value < 600 for value in record["seconds"].values())
    assert main([*args, "--quiet"]) == 2  # outputs exist
    assert main(["rerun", str(out / "demo.json"), "--out", str(tmp_path / "again")]) == 0
    again = tmp_path / "again" / "stem.wav"
    assert again.read_bytes() == (out / "stem.wav").read_bytes()

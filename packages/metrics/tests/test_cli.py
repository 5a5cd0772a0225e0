"""The ``openriff-metrics`` CLI on folders and files of ``.npy`` embeddings, and the
reference cache / batch protocol behind it."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from openriff.metrics import density_coverage, frechet_distance, kernel_distance
from openriff.metrics.cli import main
from openriff.metrics.protocol import Reference, batched, fad_against


def write_folder(folder: Path, x: np.ndarray, per_file: int = 50) -> Path:
    folder.mkdir(parents=True)
    for i in range(0, len(x), per_file):
        np.save(folder / f"part{i:05d}.npy", x[i : i + per_file].astype(np.float32))
    (folder / "notes.json").write_text("{}")  # sidecars are ignored
    return folder


@pytest.fixture
def sets(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((300, 8)).astype(np.float32)
    cand = (rng.standard_normal((200, 8)) * 1.2 + 0.3).astype(np.float32)
    return write_folder(tmp_path / "ref", ref), write_folder(tmp_path / "cand", cand), ref, cand


def test_fad_kd_prdc_from_folders(
    sets: tuple[Path, Path, np.ndarray, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref_dir, cand_dir, ref, cand = sets
    out = tmp_path / "fad.json"
    assert main(["fad", str(ref_dir), str(cand_dir), "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["result"]["fad"] == pytest.approx(frechet_distance(ref, cand), rel=1e-9)
    assert record["settings"]["reference"] == str(ref_dir)
    assert "fad" in capsys.readouterr().out
    assert main(["fad", str(ref_dir), str(cand_dir), "--json", str(out)]) == 2  # exists

    kd = tmp_path / "kd.json"
    args = ["kd", str(ref_dir), str(cand_dir), "--subsets", "5", "--subset-size", "100"]
    assert main([*args, "--json", str(kd)]) == 0
    expected = kernel_distance(ref, cand, subsets=5, subset_size=100, seed=0)
    assert json.loads(kd.read_text())["result"]["kd"] == pytest.approx(expected[0])
    assert json.loads(kd.read_text())["settings"]["degree"] == 3

    pr = tmp_path / "prdc.json"
    assert main(["prdc", str(ref_dir), str(cand_dir), "--k", "3", "--json", str(pr)]) == 0
    assert json.loads(pr.read_text())["result"] == pytest.approx(density_coverage(ref, cand, k=3))


def test_cached_reference_and_batches(
    sets: tuple[Path, Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    ref_dir, cand_dir, ref, cand = sets
    cache = tmp_path / "ref.npz"
    first = tmp_path / "a.json"
    batch_args = ["--batches", "4", "--batch-size", "50"]
    assert (
        main(
            [
                "fad",
                str(ref_dir),
                str(cand_dir),
                *batch_args,
                "--save-reference",
                str(cache),
                "--json",
                str(first),
            ]
        )
        == 0
    )
    second = tmp_path / "b.json"
    assert main(["fad", str(cache), str(cand_dir), *batch_args, "--json", str(second)]) == 0
    a, b = json.loads(first.read_text())["result"], json.loads(second.read_text())["result"]
    assert a["fad"] == pytest.approx(b["fad"], rel=1e-6)  # float32 files, float64 stats
    assert len(a["fad_batches"]) == 4
    mean, _, values = batched(fad_against(Reference.from_embeddings(ref)), cand, 4, 50, seed=0)
    assert a["fad"] == pytest.approx(mean, rel=1e-9)
    assert np.std(values) > 0
    loaded = Reference.load(cache)
    assert loaded.n == 300
    assert loaded.embeddings is not None
    stats_only = tmp_path / "stats.npz"
    Reference.from_embeddings(ref).save(stats_only, keep_embeddings=False)
    assert main(["kd", str(stats_only), str(cand_dir)]) == 2
    with pytest.raises(ValueError, match="need 600 candidates"):
        batched(fad_against(loaded), cand, 12, 50)


def test_apa_and_clap_score(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    np.save(tmp_path / "bg.npy", rng.standard_normal((500, 4)))
    np.save(tmp_path / "mis.npy", rng.standard_normal((500, 4)) + 2.0)
    np.save(tmp_path / "cand.npy", rng.standard_normal((500, 4)))
    out = tmp_path / "apa.json"
    files = [str(tmp_path / f) for f in ("bg.npy", "mis.npy", "cand.npy")]
    assert main(["apa", *files, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["result"]["apa"] > 0.9
    a, b = rng.standard_normal((10, 4)), rng.standard_normal((10, 4))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", a + 0.01 * b)
    out = tmp_path / "cs.json"
    assert (
        main(["clap-score", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--json", str(out)])
        == 0
    )
    assert json.loads(out.read_text())["result"]["clap_score"] > 0.99


def test_cli_names_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "x.npy", np.ones((5, 3)))
    np.save(tmp_path / "wide.npy", np.ones((5, 4)))
    bad = np.ones((5, 3))
    bad[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    (tmp_path / "junk.npy").write_bytes(b"no")
    cases = [
        (
            ["fad", str(tmp_path / "empty"), str(tmp_path / "x.npy")],
            r"no audio files \(and no \.npy",
        ),
        (["fad", str(tmp_path / "x.npy"), str(tmp_path / "wide.npy")], "dimension mismatch"),
        (["fad", str(tmp_path / "x.npy"), str(tmp_path / "nan.npy")], r"nan\.npy: contains NaN"),
        (
            ["fad", str(tmp_path / "x.npy"), str(tmp_path / "junk.npy")],
            r"junk\.npy: not a readable",
        ),
        (["fad", str(tmp_path / "x.npy"), str(tmp_path / "none")], "no such file"),
        (["prdc", str(tmp_path / "x.npy"), str(tmp_path / "x.npy")], "needs at least 7"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert re.search(message, err), (message, err)


def write_pairs(folder: Path, pairs: list[tuple[float, float]], seconds: float = 1.0) -> Path:
    import math

    import soundfile as sf

    rate = 48_000
    t = np.arange(int(seconds * rate)) / rate
    for sub in ("context", "accompaniment"):
        (folder / sub).mkdir(parents=True)
    for i, (low, high) in enumerate(pairs):
        sf.write(folder / "context" / f"{i}.wav", 0.3 * np.sin(2 * math.pi * low * t), rate)
        sf.write(folder / "accompaniment" / f"{i}.wav", 0.3 * np.sin(2 * math.pi * high * t), rate)
    return folder


def test_cli_on_audio_with_the_clap_embedder(clap_checkpoint: Path, tmp_path: Path) -> None:
    clap = ["--embedder", "clap", "--clap", str(clap_checkpoint), "--amodel", "HTSAT-tiny"]
    pairs = [(110.0 * (1 + i % 4), 440.0 * (1 + i // 4)) for i in range(8)]
    background = write_pairs(tmp_path / "bg", pairs)
    out = tmp_path / "ctx.npy"
    cache = ["--cache", str(tmp_path / "cache")]
    assert main(["embed", str(background / "context"), "--out", str(out), *clap, *cache]) == 0
    embedded = np.load(out)
    assert embedded.shape == (8, 512)
    np.testing.assert_allclose(np.linalg.norm(embedded, axis=1), 1.0, rtol=1e-5)
    assert json.loads(out.with_suffix(".files.json").read_text())[0].endswith("0.wav")
    assert any((tmp_path / "cache").rglob("*.npy"))
    # Audio folders score directly (embedded through the same cache).
    record = tmp_path / "fad.json"
    folders = [str(background / "context"), str(background / "accompaniment")]
    assert main(["fad", *folders, *clap, *cache, "--json", str(record)]) == 0
    assert json.loads(record.read_text())["result"]["fad"] > 0
    # APA on pair folders: the background against itself is 1, its shuffle 0.
    apa_json = tmp_path / "apa.json"
    args = ["apa", str(background), "shuffle", str(background), *clap, "--json", str(apa_json)]
    assert main(args) == 0
    assert json.loads(apa_json.read_text())["result"]["apa"] == pytest.approx(1.0)
    assert main(["apa", str(background), "shuffle", str(tmp_path / "none"), *clap]) == 2

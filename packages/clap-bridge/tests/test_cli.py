"""Manifests, pairs files and the ``openriff-clap-bridge`` CLI end to end (random CLAP)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openriff.clap_bridge import ClapBridge
from openriff.clap_bridge.cli import main
from openriff.clap_bridge.manifest import load_pairs, read_manifest, save_pairs


def write_tone(path: Path, freq: float, seconds: float = 1.0, rate: int = 48_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * math.pi * freq * t)).astype(np.float32), rate)
    return path


def test_manifest_formats(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("audio,tags\nclips/x.wav,bass; warm\n/abs/y.wav,drums\n")
    items = read_manifest(tmp_path / "a.csv")
    assert [i.text for i in items] == ["bass, warm", "drums"]
    assert items[0].audio == tmp_path / "clips" / "x.wav"
    assert items[1].audio == Path("/abs/y.wav")
    rows = [{"audio": "x.wav", "tags": ["keys", "soft"]}, {"audio": "y.wav", "text": "a riff"}]
    (tmp_path / "b.json").write_text(json.dumps({"items": rows}))
    assert [i.text for i in read_manifest(tmp_path / "b.json")] == ["keys, soft", "a riff"]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_manifest(tmp_path / "c.jsonl") == read_manifest(tmp_path / "b.json")
    for name, content, message in [
        ("d.csv", "audio,text\n", "no items"),
        ("e.csv", "audio,text\nx.wav,\n", "item 1: no text or tags"),
        ("f.json", '[{"text": "bass"}]', "item 1: no audio path"),
        ("g.json", "{not json", "not valid json"),
        ("h.txt", "x", "unknown format"),
    ]:
        (tmp_path / name).write_text(content)
        with pytest.raises(ValueError, match=message):
            read_manifest(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path / "none.csv")


def test_pairs_file_round_trip(tmp_path: Path) -> None:
    text, audio = torch.randn(3, 8), torch.randn(3, 6)
    save_pairs(tmp_path / "p.safetensors", text, audio, ["a", "b", "c"], ["1", "2", "3"])
    with pytest.raises(FileExistsError):
        save_pairs(tmp_path / "p.safetensors", text, audio, ["a", "b", "c"], ["1", "2", "3"])
    loaded_text, loaded_audio, prompts = load_pairs(tmp_path / "p.safetensors")
    assert torch.equal(loaded_text, text)
    assert torch.equal(loaded_audio, audio)
    assert prompts == ["a", "b", "c"]
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_pairs(tmp_path / "bad.safetensors")


def test_cli_embed_train_sample(
    clap_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = []
    for i, (freq, tags) in enumerate([(110, "bass; warm"), (880, "keys; bright"), (220, "bass")]):
        write_tone(clips / f"{i}.wav", freq)
        rows.append(f"clips/{i}.wav,{tags}")
    (tmp_path / "items.csv").write_text("audio,tags\n" + "\n".join(rows) + "\n")
    clap = ["--clap", str(clap_checkpoint), "--amodel", "HTSAT-tiny"]
    pairs = tmp_path / "pairs.safetensors"
    embed = ["embed", "--manifest", str(tmp_path / "items.csv"), *clap, "--out", str(pairs)]
    assert main(embed) == 0
    text, audio, prompts = load_pairs(pairs)
    assert text.shape == audio.shape == (3, 512)
    assert prompts == ["bass, warm", "keys, bright", "bass"]
    torch.testing.assert_close(audio.norm(dim=1), torch.ones(3))
    assert any((tmp_path / ".clap-cache").rglob("*.npy"))  # embeddings were cached
    assert main(embed) == 2  # the output exists
    assert "exists" in capsys.readouterr().err

    run = tmp_path / "run"
    train = ["train", "--pairs", str(pairs), "--out", str(run), "--preset", "tiny"]
    assert (
        main([*train, "--steps", "3", "--batch-size", "3", "--warmup-steps", "1", "--quiet"]) == 0
    )
    bridge = ClapBridge.from_pretrained(run / "final")
    assert (bridge.dim, bridge.text_dim) == (512, 512)

    out = tmp_path / "samples.npy"
    sample = ["sample", "--bridge", str(run / "final"), *clap, "--steps", "2", "--out", str(out)]
    assert main([*sample, "--prompt", "warm bass", "--prompt", "drums", "--n", "3"]) == 0
    array = np.load(out)
    assert array.shape == (2, 3, 512)
    np.testing.assert_allclose(np.linalg.norm(array, axis=-1), 1.0, rtol=1e-5)
    np.save(tmp_path / "text.npy", text.numpy())
    unconditional = tmp_path / "u.npy"
    args = ["sample", "--bridge", str(run / "final"), "--steps", "2", "--out", str(unconditional)]
    assert main([*args, "--unconditional", "4"]) == 0
    assert np.load(unconditional).shape == (4, 512)
    from_file = tmp_path / "f.npy"
    args = ["sample", "--bridge", str(run / "final"), "--steps", "2", "--out", str(from_file)]
    assert main([*args, "--text-embeddings", str(tmp_path / "text.npy")]) == 0
    assert np.load(from_file).shape == (3, 1, 512)
    capsys.readouterr()
    assert main([*args[:-1], str(tmp_path / "g.npy")]) == 2  # neither prompt nor embeddings
    assert "--prompt" in capsys.readouterr().err


def test_cli_names_bad_input(
    clap_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "items.csv").write_text("audio,text\nmissing.wav,bass\n")
    clap = ["--clap", str(clap_checkpoint), "--amodel", "HTSAT-tiny"]
    out = ["--out", str(tmp_path / "p.safetensors")]
    assert main(["embed", "--manifest", str(tmp_path / "items.csv"), *clap, *out]) == 2
    assert "missing.wav does not exist" in capsys.readouterr().err
    assert not (tmp_path / "p.safetensors").exists()
    write_tone(tmp_path / "x.wav", 440)
    (tmp_path / "items.csv").write_text("audio,text\nx.wav,bass\n")
    wrong = ["--clap", str(clap_checkpoint), "--amodel", "HTSAT-base"]
    assert main(["embed", "--manifest", str(tmp_path / "items.csv"), *wrong, *out]) == 2
    assert "HTSAT-tiny, no fusion checkpoint" in capsys.readouterr().err
    assert (
        main(["train", "--pairs", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "r")])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err

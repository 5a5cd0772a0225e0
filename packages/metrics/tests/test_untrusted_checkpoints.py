"""Third-party checkpoints reached through the embedders load weights only: a crafted
pickle is refused and the code it carries never runs (fadtk's LAION-CLAP and MS-CLAP
loaders, any fadtk loader that calls torch.load itself, and OpenRiff's own CLAP)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from openriff.metrics.errors import EmbedderUnavailable


class Payload:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def crafted(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {"module.x": torch.zeros(1)}, "payload": Payload(marker)}, path)
    return path


@pytest.fixture
def fadtk_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """fadtk's checkpoint folder, moved to a temporary one for the test."""
    import openriff.metrics.embedders as embedders

    folder = tmp_path / "fadtk-checkpoints"
    folder.mkdir()
    monkeypatch.setattr(embedders, "fadtk_checkpoints", lambda: folder)
    return folder


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("clap-laion-music", "music_audioset_epoch_15_esc_90.14.pt"),
        ("clap-laion-audio", "630k-audioset-best.pt"),
    ],
)
def test_fadtk_laion_clap_refuses_a_crafted_checkpoint(
    name: str, file: str, fadtk_folder: Path, tmp_path: Path
) -> None:
    from openriff.metrics.embedders import FadtkEmbedder

    marker = tmp_path / "pwned"
    path = crafted(fadtk_folder / file, marker)
    original = path.read_bytes()
    with pytest.raises(EmbedderUnavailable, match=r"holds Python objects") as error:
        FadtkEmbedder(name)
    assert "\n" not in str(error.value)
    assert "weights_only=False" not in str(error.value)
    assert not marker.exists()
    assert path.read_bytes() == original  # fadtk's loader would rewrite the file


def test_fadtk_laion_clap_loads_a_real_format_checkpoint_by_name(
    fadtk_folder: Path, clap_checkpoint: Path
) -> None:
    """The zoo name reaches the right loader (fadtk's 'audio' model is HTSAT-tiny)."""
    from openriff.metrics.embedders import FadtkEmbedder

    shutil.copy(clap_checkpoint, fadtk_folder / "630k-audioset-best.pt")
    embedder = FadtkEmbedder("clap-laion-audio")
    assert (embedder.name, embedder.dim, embedder.sample_rate) == (
        "fadtk:clap-laion-audio",
        512,
        48_000,
    )
    t = np.arange(48_000) / 48_000
    out = embedder.embed([(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)])
    assert out.shape == (1, 512)
    assert np.isfinite(out).all()


def test_fadtk_ms_clap_refuses_a_crafted_checkpoint(fadtk_folder: Path, tmp_path: Path) -> None:
    from openriff.metrics.embedders import FadtkEmbedder

    marker = tmp_path / "pwned"
    crafted(fadtk_folder / "CLAP_weights_2023.pth", marker)
    with pytest.raises(EmbedderUnavailable, match="clap-2023"):
        FadtkEmbedder("clap-2023")
    assert not marker.exists()


def test_any_fadtk_loader_that_unpickles_is_held_to_weights_only(tmp_path: Path) -> None:
    """laion-clap's own loader passes weights_only=False; inside an embedder it is refused."""
    from fadtk.model_loader import ModelLoader
    from laion_clap.clap_module.factory import load_state_dict

    from openriff.metrics.embedders import FadtkEmbedder

    marker = tmp_path / "pwned"
    path = crafted(tmp_path / "weights.pt", marker)

    class ThirdParty(ModelLoader):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__("third-party", num_features=4, sr=16_000)

        def load_model(self) -> None:
            self.model = load_state_dict(str(path))  # torch.load(weights_only=False)

        def _get_embedding(self, audio: np.ndarray) -> torch.Tensor:
            raise AssertionError("never reached")

    with pytest.raises(EmbedderUnavailable, match="holds Python objects") as error:
        FadtkEmbedder(ThirdParty())
    assert "\n" not in str(error.value)
    assert not marker.exists()
    assert torch.load is torch.serialization.load  # the guard is undone afterwards


def test_clap_embedder_refuses_a_crafted_checkpoint(tmp_path: Path) -> None:
    from openriff.metrics.embedders import ClapEmbedder

    marker = tmp_path / "pwned"
    with pytest.raises(ValueError, match="holds Python objects"):
        ClapEmbedder(crafted(tmp_path / "clap.pt", marker))
    assert not marker.exists()


def test_the_cli_refuses_a_crafted_fadtk_clap_in_one_line(
    fadtk_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`embed --embedder fadtk:clap-laion-music` reaches the loader (it once failed with
    UnboundLocalError) and refuses the crafted file without running it."""
    import soundfile as sf

    from openriff.metrics.cli import main

    marker = tmp_path / "pwned"
    crafted(fadtk_folder / "music_audioset_epoch_15_esc_90.14.pt", marker)
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "a.wav", np.zeros(48_000, np.float32), 48_000)
    out = tmp_path / "e.npy"
    code = main(["embed", str(audio), "--embedder", "fadtk:clap-laion-music", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("openriff-metrics embed: error: fadtk model 'clap-laion-music'")
    assert "holds Python objects" in err
    assert "\n" not in err
    assert not marker.exists()
    assert not out.exists()

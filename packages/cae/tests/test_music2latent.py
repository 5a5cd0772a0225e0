"""Music2LatentCodec over a randomly initialised music2latent model (no download)."""

from pathlib import Path

import pytest
import torch

from openriff.cae import LatentCodec
from openriff.cae.music2latent import Music2LatentCodec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from music2latent.models import UNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m2l") / "music2latent.pt"
    # The package's checkpoint format: a dict whose 'gen_state_dict' holds the UNet.
    torch.save({"gen_state_dict": UNet().state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def codec(checkpoint: Path) -> Music2LatentCodec:
    return Music2LatentCodec(checkpoint)


def test_contract_shapes_and_exact_length(codec: Music2LatentCodec) -> None:
    assert isinstance(codec, LatentCodec)
    assert codec.sample_rate == 48_000
    assert codec.hop_length == pytest.approx(4096 * 48_000 / 44_100)
    wave = torch.randn(2, 1, 14_400, generator=torch.Generator().manual_seed(0)) * 0.1
    latents = codec.encode(wave)
    # 14400 samples at 48 kHz = 13230 at 44.1 kHz -> ceil(13230 / 4096) = 4 latents.
    assert latents.shape == (2, 64, 4)
    assert bool(torch.isfinite(latents).all())
    out = codec.decode(latents, generator=torch.Generator().manual_seed(1), length=14_400)
    assert out.shape == (2, 1, 14_400)
    assert bool(torch.isfinite(out).all())


def test_decoding_is_reproducible_and_stereo_is_downmixed(codec: Music2LatentCodec) -> None:
    stereo = torch.randn(1, 2, 9_000, generator=torch.Generator().manual_seed(2)) * 0.1
    latents = codec.encode(stereo)
    torch.testing.assert_close(latents, codec.encode(stereo.mean(1, keepdim=True)))
    a = codec.decode(latents, generator=torch.Generator().manual_seed(3))
    b = codec.decode(latents, generator=torch.Generator().manual_seed(3))
    c = codec.decode(latents, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_missing_or_foreign_checkpoints_are_explained(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"music2latent\.pt from the official"):
        Music2LatentCodec(tmp_path / "music2latent.pt")
    foreign = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="no 'gen_state_dict'"):
        Music2LatentCodec(foreign)


class Payload:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "music2latent.pt"
    torch.save({"gen_state_dict": {}, "payload": Payload(marker)}, path)
    with pytest.raises(ValueError, match=r"music2latent\.pt holds Python objects") as error:
        Music2LatentCodec(path)
    assert "weights_only=False" not in str(error.value)
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable music2latent checkpoint"):
        Music2LatentCodec(tmp_path / "junk.pt")

"""The bridge prior: backbone contract, sampling, checkpoints, and that it learns to cross
a synthetic modality gap."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from openriff.clap_bridge import ClapBridge, bridge_model_config, embedding_pairs
from openriff.clap_bridge.mlp import PRESETS, BridgeMLP
from openriff.latent_diffusion import Conditioning, create_backbone
from openriff.latent_diffusion.checkpoint import ModelConfig, build, save_pretrained
from openriff.latent_diffusion.train import TrainConfig, train

DIM = PRESETS["tiny"].channels


def modality_gap_task(n: int, draw_seed: int, dim: int = DIM) -> tuple[torch.Tensor, torch.Tensor]:
    """``(text, audio)``: audio on the sphere around 6 cluster centres; text is
    ``normalise(R audio + gap + noise)`` for a fixed rotation ``R`` and offset ``gap``."""
    g = torch.Generator().manual_seed(0)  # the task itself: the same for every draw
    centres = F.normalize(torch.randn(6, dim, generator=g), dim=1)
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    gap = F.normalize(torch.randn(dim, generator=g), dim=0)
    g = torch.Generator().manual_seed(draw_seed)
    cluster = torch.randint(0, 6, (n,), generator=g)
    audio = F.normalize(centres[cluster] + 0.35 * torch.randn(n, dim, generator=g), dim=1)
    text = audio @ rotation.T + gap + 0.1 * torch.randn(n, dim, generator=g)
    return F.normalize(text, dim=1), audio


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b``."""
    a, b = a.double(), b.double()
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    mean = (a.mean(0) - b.mean(0)).square().sum()
    return float(mean + cov_a.trace() + cov_b.trace() - 2 * cross)


def test_bridge_learns_to_cross_a_synthetic_modality_gap(tmp_path: Path) -> None:
    text, audio = modality_gap_task(4096, draw_seed=1)
    config = TrainConfig(
        model=bridge_model_config("tiny"),
        steps=600,
        batch_size=256,
        lr=1e-3,
        warmup_steps=50,
        schedule="cosine",
        min_lr=1e-5,
        ema_decay=0.99,
        p_drop_context=0.0,
        p_drop_embedding=0.2,
        checkpoint_every=600,
        log_every=100,
        seed=0,
    )
    bridge = ClapBridge.from_pretrained(
        train(config, embedding_pairs(text, audio), tmp_path / "run", show_progress=False)
    )
    held_text, held_audio = modality_gap_task(512, draw_seed=2)
    samples = bridge.sample(held_text, generator=torch.Generator().manual_seed(0))[:, 0]
    assert samples.shape == held_audio.shape
    torch.testing.assert_close(samples.norm(dim=1), torch.ones(512))

    raw_cosine = (held_text * held_audio).sum(1).mean().item()
    bridged_cosine = (samples * held_audio).sum(1).mean().item()
    assert raw_cosine < 0.1
    assert bridged_cosine > raw_cosine + 0.5, (raw_cosine, bridged_cosine)

    text_fd = frechet_distance(held_text, held_audio)
    assert frechet_distance(samples, held_audio) < 0.1 * text_fd
    unconditional = bridge.sample_unconditional(512, generator=torch.Generator().manual_seed(1))
    assert frechet_distance(unconditional, held_audio) < 0.2 * text_fd
    # Guidance sharpens the conditional samples towards their pairs.
    guided = bridge.sample(held_text, cfg=2.0, generator=torch.Generator().manual_seed(0))[:, 0]
    assert (guided * held_audio).sum(1).mean().item() > bridged_cosine


def test_backbone_contract_and_zero_start() -> None:
    torch.manual_seed(0)
    mlp = create_backbone("bridge-mlp", "tiny")
    assert isinstance(mlp, BridgeMLP)
    x = torch.randn(4, DIM, 3)
    text = Conditioning(embedding=torch.randn(4, DIM))
    # AdaLN-Zero: the untrained backbone outputs zeros.
    assert mlp(x, torch.zeros(4), text).abs().max().item() == 0.0
    with torch.no_grad():
        for p in mlp.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    out = mlp(x, torch.linspace(-1, 1, 4), text)
    assert out.shape == x.shape
    # Frames are mapped independently.
    torch.testing.assert_close(out[..., 1:2], mlp(x[..., 1:2], torch.linspace(-1, 1, 4), text))
    # The text changes the output; dropping it equals giving none.
    assert (out - mlp(x, torch.linspace(-1, 1, 4), None)).abs().max() > 1e-4
    dropped = Conditioning(embedding=torch.randn(4, DIM), keep_embedding=torch.zeros(4).bool())
    torch.testing.assert_close(
        mlp(x, torch.zeros(4), dropped), mlp(x, torch.zeros(4), Conditioning())
    )
    with pytest.raises(ValueError, match="no context"):
        mlp(x, torch.zeros(4), Conditioning(context=torch.randn(4, 8, 3)))
    with pytest.raises(ValueError, match=rf"\[B, {DIM}, T\]"):
        mlp(torch.randn(4, DIM + 1, 1), torch.zeros(4))


def test_paper_preset_is_sized_like_the_paper() -> None:
    config = PRESETS["paper"]
    assert (config.width, config.depth, config.channels, config.embedding_dim) == (
        1024,
        8,
        512,
        512,
    )
    params = sum(p.numel() for p in BridgeMLP(config).parameters())
    assert 30e6 < params < 60e6, params  # 1024 x 1024 dense layers + AdaLN: ~45 M


def test_sampling_shapes_determinism_and_bad_input() -> None:
    torch.manual_seed(0)
    bridge = ClapBridge.from_preset("tiny")
    with torch.no_grad():
        for p in bridge.denoiser.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    text = torch.randn(3, DIM)
    out = bridge.sample(text, 4, steps=4, cfg=1.5, generator=torch.Generator().manual_seed(5))
    assert out.shape == (3, 4, DIM)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3, 4))
    again = bridge.sample(text, 4, steps=4, cfg=1.5, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, again)
    # Samples of one prompt differ from each other.
    assert (out[:, 0] - out[:, 1]).abs().max() > 1e-3
    # The scale of the text embedding does not matter (it is normalised).
    torch.testing.assert_close(
        bridge.sample(3 * text, 4, steps=4, cfg=1.5, generator=torch.Generator().manual_seed(5)),
        out,
    )
    assert bridge.sample_unconditional(5, steps=3).shape == (5, DIM)
    for bad, message in [
        (torch.randn(0, DIM), "empty"),
        (torch.randn(2, DIM + 1), rf"\[N, {DIM}\]"),
        (torch.full((2, DIM), float("nan")), "NaN"),
        (torch.zeros(2, DIM), "all-zero"),
    ]:
        with pytest.raises(ValueError, match=message):
            bridge.sample(bad)
    with pytest.raises(ValueError, match="n_per_prompt"):
        bridge.sample(text, 0)
    with pytest.raises(ValueError, match="steps"):
        bridge.sample_unconditional(2, steps=0)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    bridge = ClapBridge.from_preset("tiny", width=64)
    with torch.no_grad():
        for p in bridge.denoiser.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    bridge.save_pretrained(tmp_path / "bridge")
    with pytest.raises(FileExistsError):
        bridge.save_pretrained(tmp_path / "bridge")
    loaded = ClapBridge.from_pretrained(tmp_path / "bridge")
    assert loaded.config == bridge.config
    text = torch.randn(2, DIM)
    torch.testing.assert_close(
        loaded.sample(text, 2, steps=3, generator=torch.Generator().manual_seed(0)),
        bridge.sample(text, 2, steps=3, generator=torch.Generator().manual_seed(0)),
    )
    other = ModelConfig(backbone="dit", preset="tiny")
    save_pretrained(build(other), other, tmp_path / "dit")
    with pytest.raises(ValueError, match="not a CLAP bridge"):
        ClapBridge.from_pretrained(tmp_path / "dit")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        ClapBridge.from_pretrained(tmp_path / "nothing")


def test_embedding_pairs_scale_to_unit_rms() -> None:
    text, audio = modality_gap_task(10, draw_seed=3)
    pairs = embedding_pairs(3 * text, audio)
    target, cond = pairs.batch(torch.arange(10))
    assert target.shape == (10, DIM, 1)
    torch.testing.assert_close(target.square().mean(dim=(1, 2)), torch.ones(10))
    assert cond.embedding is not None
    torch.testing.assert_close(cond.embedding, text * math.sqrt(DIM))
    with pytest.raises(ValueError, match="9 text embeddings but 10 audio"):
        embedding_pairs(text[:9], audio)

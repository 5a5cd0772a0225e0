"""Each objective brings its preconditioning, loss and schedule from one registry."""

from __future__ import annotations

import pytest
import torch

from openriff.latent_diffusion.checkpoint import ModelConfig, build
from openriff.latent_diffusion.losses import ConsistencyLoss, EDMLoss, VLoss
from openriff.latent_diffusion.objectives import OBJECTIVES
from openriff.latent_diffusion.precond import ConsistencyPrecond, EDMPrecond, VPrecond
from openriff.latent_diffusion.samplers import SAMPLERS
from openriff.latent_diffusion.schedules import consistency_sigmas, cosine_sigmas, karras_sigmas
from openriff.latent_diffusion.train import TrainConfig, make_loss

EXPECTED = {
    "edm": (EDMPrecond, EDMLoss, karras_sigmas, {"heun", "euler", "ddim"}),
    "consistency": (ConsistencyPrecond, ConsistencyLoss, consistency_sigmas, {"consistency"}),
    "v": (VPrecond, VLoss, cosine_sigmas, {"heun", "euler", "ddim"}),
}


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_an_objective_chooses_all_three(objective: str) -> None:
    precond, loss, schedule, samplers = EXPECTED[objective]
    assert OBJECTIVES[objective].samplers == samplers
    assert samplers <= set(SAMPLERS)
    config = ModelConfig(objective=objective, sigma_min=0.01, sigma_max=50.0)
    model = build(config)
    assert type(model) is precond
    assert (model.sigma_min, model.sigma_max) == (0.01, 50.0)
    assert type(make_loss(config)) is loss
    sigmas = OBJECTIVES[objective].schedule(6, 0.01, 50.0)
    assert torch.equal(sigmas, schedule(6, 0.01, 50.0))
    assert float(sigmas[0]) == pytest.approx(50.0)
    assert float(sigmas[-1]) == 0.0


def test_log_normal_draw_settings_only_where_the_loss_draws_so() -> None:
    edm = make_loss(ModelConfig(objective="edm"), p_mean=0.8, p_std=1.5)
    assert isinstance(edm, EDMLoss)
    assert (edm.p_mean, edm.p_std) == (0.8, 1.5)
    with pytest.raises(ValueError, match="v-objective draws uniform times"):
        TrainConfig(model=ModelConfig(objective="v"), p_mean=0.8)
    with pytest.raises(ValueError, match="objective must be one of"):
        ModelConfig(objective="x0")

import math

import pytest
import torch

from openriff.cae.consistency import (
    ConsistencyConfig,
    consistency_loss,
    consistency_weight,
    index_of,
    pseudo_huber,
    sample,
    sample_training_sigmas,
    scalings,
    sigma_at,
    teacher_step,
)
from openriff.cae.noise import gaussian

CONFIG = ConsistencyConfig()


def test_boundary_condition_at_sigma_min() -> None:
    c_skip, c_out, c_in, _ = scalings(torch.tensor([CONFIG.sigma_min]), CONFIG)
    assert c_skip.item() == pytest.approx(1.0)
    assert c_out.item() == pytest.approx(0.0, abs=1e-12)
    assert c_in.item() == pytest.approx(1 / math.sqrt(CONFIG.sigma_min**2 + 0.25))


def test_noise_curve_endpoints_and_inverse() -> None:
    u = torch.linspace(0, 1, 11, dtype=torch.float64)
    sigma = sigma_at(u, CONFIG)
    assert sigma[0].item() == pytest.approx(0.002)
    assert sigma[-1].item() == pytest.approx(80.0)
    assert bool((sigma[1:] > sigma[:-1]).all())
    torch.testing.assert_close(index_of(sigma, CONFIG), u)


def test_teacher_step_curriculum_is_exponential_from_1_over_s0_to_1_over_s1() -> None:
    assert teacher_step(0.0, CONFIG) == pytest.approx(1 / 10)
    assert teacher_step(1.0, CONFIG) == pytest.approx(1 / 1280)
    assert teacher_step(0.5, CONFIG) == pytest.approx(math.sqrt(1 / 10 * 1 / 1280))


def test_training_sigmas_are_ordered_and_in_range() -> None:
    g = torch.Generator().manual_seed(0)
    sigma, teacher = sample_training_sigmas(
        4096, 0.3, CONFIG, generator=g, device=torch.device("cpu")
    )
    assert bool((teacher < sigma).all())
    assert bool((teacher >= CONFIG.sigma_min * 0.999).all())
    assert bool((sigma <= CONFIG.sigma_max).all())
    # A quarter sits at sigma_max (one-step decoding starts there), the rest is log-normal.
    at_max = sigma == CONFIG.sigma_max
    assert at_max.float().mean().item() == pytest.approx(CONFIG.sigma_max_fraction, abs=0.03)
    lognormal = ConsistencyConfig(sigma_max_fraction=0.0)
    sigma, _ = sample_training_sigmas(4096, 0.3, lognormal, generator=g, device=torch.device("cpu"))
    assert sigma.log().median().item() == pytest.approx(CONFIG.p_mean, abs=0.1)
    assert sigma.log().std().item() == pytest.approx(CONFIG.p_std, abs=0.15)


def test_pseudo_huber() -> None:
    a = torch.zeros(2, 100)
    b = torch.zeros(2, 100)
    b[1] = 1.0
    d = pseudo_huber(a, b, 0.00054)
    c = 0.00054 * 10
    assert d[0].item() == pytest.approx(0.0, abs=1e-7)
    assert d[1].item() == pytest.approx(math.sqrt(100 + c * c) - c, rel=1e-6)


def test_one_step_sampling_of_an_exact_consistency_function() -> None:
    # Data is a single point mu: the exact consistency function returns mu from anywhere.
    mu = torch.tensor([0.3, -0.7])

    def model(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return mu.expand_as(x)

    cpu = torch.device("cpu")
    noise = gaussian(torch.Generator().manual_seed(0), cpu, torch.float32)
    for steps in (1, 3):
        out = sample(model, (5, 2), steps, CONFIG, noise=noise, device=cpu)
        torch.testing.assert_close(out, mu.expand(5, 2))
    with pytest.raises(ValueError, match="steps"):
        sample(model, (5, 2), 0, CONFIG, noise=noise, device=cpu)


def test_consistency_weight_ramps_in() -> None:
    assert consistency_weight(0.3, CONFIG) == 1.0
    ramped = ConsistencyConfig(consistency_warmup=0.5)
    assert consistency_weight(0.0, ramped) == 0.0
    assert consistency_weight(0.25, ramped) == pytest.approx(0.5)
    assert consistency_weight(0.9, ramped) == 1.0


def test_student_stays_a_teacher_step_above_sigma_min() -> None:
    # Otherwise sigma - sigma_teacher can be arbitrarily small and 1 / gap explodes.
    g = torch.Generator().manual_seed(1)
    for progress in (0.0, 0.5, 1.0):
        sigma, teacher = sample_training_sigmas(
            20_000, progress, CONFIG, generator=g, device=torch.device("cpu")
        )
        step = teacher_step(progress, CONFIG)
        smallest_gap = sigma_at(torch.tensor(step, dtype=torch.float64), CONFIG) - 0.002
        assert (sigma - teacher).min().item() >= 0.99 * smallest_gap.item()


def test_consistency_loss_is_the_weighted_pseudo_huber_distance_per_element() -> None:
    # f(x, sigma) = x / (1 + sigma): student and teacher differ by a known amount.
    def model(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x / (1 + sigma.view(-1, 1, 1))

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 25, generator=g)
    noise = torch.randn(3, 4, 25, generator=g)
    sigma = torch.tensor([0.5, 2.0, 10.0])
    teacher = torch.tensor([0.4, 1.5, 8.0])
    loss, student = consistency_loss(model, x, noise, sigma, teacher, CONFIG)
    view = (-1, 1, 1)
    expected_student = (x + sigma.view(view) * noise) / (1 + sigma.view(view))
    expected_teacher = (x + teacher.view(view) * noise) / (1 + teacher.view(view))
    torch.testing.assert_close(student, expected_student)
    distance = pseudo_huber(expected_student, expected_teacher, CONFIG.huber_c)
    torch.testing.assert_close(loss, distance / ((sigma - teacher) * 10.0))  # sqrt(100) = 10

"""The metrics against their reference implementations and analytic cases."""

import re
import warnings

import numpy as np
import pytest

from openriff.metrics import (
    apa,
    audio_prompt_adherence,
    clap_score,
    density_coverage,
    fad_infinity,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
    kernel_distance,
    polynomial_mmd,
)


def random_sets(
    seed: int = 0, n: int = 400, m: int = 300, dim: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    x = rng.standard_normal((n, dim)) @ mix
    y = (
        rng.standard_normal((m, dim)) @ (mix + 0.2 * rng.standard_normal((dim, dim)) / np.sqrt(dim))
        + 0.3
    )
    return x, y


def test_frechet_matches_fadtk() -> None:
    from fadtk.fad import calc_frechet_distance

    for seed in range(3):
        x, y = random_sets(seed)
        mu1, cov1 = gaussian_stats(x)
        mu2, cov2 = gaussian_stats(y)
        reference = float(np.real(calc_frechet_distance(mu1, cov1, mu2, cov2)))
        assert frechet_distance(x, y) == pytest.approx(reference, rel=1e-6)
        assert frechet_distance_from_stats(mu1, cov1, mu2, cov2) == pytest.approx(
            reference, rel=1e-6
        )


def test_frechet_analytic_cases() -> None:
    x, _ = random_sets(1)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance_from_stats([1.0], [[4.0]], [-2.0], [[0.25]]) == pytest.approx(
        9 + 1.5**2
    )
    # Diagonal covariances: sum over dimensions.
    value = frechet_distance_from_stats(
        np.zeros(3), np.diag([1.0, 4, 9]), np.ones(3), np.diag([4.0, 4, 1])
    )
    assert value == pytest.approx(3 + 1 + 0 + 4)


def test_frechet_stays_real_and_finite_on_singular_covariances() -> None:
    rng = np.random.default_rng(0)
    low_rank = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 64))  # rank 3 in 64-d
    other = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 64))
    with pytest.warns(UserWarning, match="n <= dim"):
        mu1, cov1 = gaussian_stats(low_rank)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu2, cov2 = gaussian_stats(other)
    value = frechet_distance_from_stats(mu1, cov1, mu2, cov2)
    assert isinstance(value, float)
    assert np.isfinite(value)
    assert value > 0


def test_fad_infinity_extrapolates_the_bias() -> None:
    rng = np.random.default_rng(0)
    dim = 8
    reference = rng.standard_normal((20_000, dim))
    mu, cov = gaussian_stats(reference)
    candidates = rng.standard_normal((2_000, dim))  # the same distribution
    small = frechet_distance_from_stats(*gaussian_stats(candidates[:200]), mu, cov)
    infinite, r2 = fad_infinity(candidates, mu, cov, seed=0)
    assert abs(infinite) < small / 4  # the 1/n bias is removed
    assert r2 > 0.5


def test_kernel_distance_matches_torchmetrics_poly_mmd() -> None:
    import torch
    from torchmetrics.image.kid import poly_mmd

    x, y = random_sets(2, n=120, m=100)
    for degree, gamma, coef0 in [(3, None, 1.0), (2, 0.5, 0.1)]:
        # torchmetrics' poly_mmd takes sets of equal size.
        ours = polynomial_mmd(x[:100], y, degree=degree, gamma=gamma, coef0=coef0)
        theirs = poly_mmd(torch.from_numpy(x[:100]), torch.from_numpy(y), degree, gamma, coef0)
        assert ours == pytest.approx(float(theirs), rel=1e-9, abs=1e-12)
    # kernel_distance averages polynomial_mmd over seeded subsets.
    mean, std = kernel_distance(x, y, subsets=10, subset_size=50, seed=3)
    rng = np.random.default_rng(3)
    values = []
    for _ in range(10):
        a = x[rng.choice(120, 50, replace=False)]
        b = y[rng.choice(100, 50, replace=False)]
        values.append(polynomial_mmd(a, b))
    assert mean == pytest.approx(np.mean(values))
    assert std == pytest.approx(np.std(values))
    # Unbiased: two independent draws of one distribution average to 0 within the error.
    both, _ = random_sets(2, n=240)
    same_mean, same_std = kernel_distance(both[:120], both[120:], subsets=50, subset_size=60)
    assert abs(same_mean) < 3 * same_std / np.sqrt(50)
    assert mean > 3 * std / np.sqrt(10)
    with pytest.warns(UserWarning, match="subset_size 1000"):
        kernel_distance(x, y, subsets=2)


def test_density_coverage_matches_prdc() -> None:
    import prdc

    for seed, k in [(0, 5), (1, 3)]:
        x, y = random_sets(seed, n=200, m=150)
        ours = density_coverage(x, y, k=k)
        theirs = prdc.compute_prdc(real_features=x, fake_features=y, nearest_k=k)
        for key in ("precision", "recall", "density", "coverage"):
            assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-12), key


def test_apa_analytic_cases() -> None:
    assert apa(0.0, 4.0, 4.0) == 1.0
    assert apa(4.0, 0.0, 4.0) == 0.0
    assert apa(1.0, 3.0, 4.0) == pytest.approx(0.75)
    assert apa(0.0, 10.0, 4.0) == 1.0  # clipped
    with pytest.raises(ValueError, match="undefined"):
        apa(1.0, 1.0, 0.0)
    rng = np.random.default_rng(0)
    dim = 6

    def draw(shift: float, n: int) -> np.ndarray:
        return rng.standard_normal((n, dim)) + shift

    background, misaligned = draw(0.0, 2000), draw(1.5, 2000)
    like_background = audio_prompt_adherence(background, misaligned, draw(0.0, 2000))
    like_misaligned = audio_prompt_adherence(background, misaligned, draw(1.5, 2000))
    halfway = audio_prompt_adherence(background, misaligned, draw(0.75, 2000))
    assert like_background > 0.95
    assert like_misaligned < 0.05
    assert halfway == pytest.approx(0.5, abs=0.1)


def test_apa_with_the_kernel_distance_whose_estimate_goes_below_zero() -> None:
    # The unbiased KD of two sets from one distribution is negative about half the time;
    # APA takes it as 0 (no distance) instead of refusing it.
    assert apa(-0.01, 4.0, 4.0) == 1.0
    assert apa(1.0, -0.5, 4.0) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="undefined"):
        apa(1.0, 1.0, -0.2)
    with pytest.raises(ValueError, match=r"d\(Y, X\) must be a finite distance, got nan"):
        apa(float("nan"), 1.0, 1.0)
    rng = np.random.default_rng(2)

    def draw(shift: float, n: int) -> np.ndarray:
        return rng.standard_normal((n, 6)) + shift

    def kd(a: np.ndarray, b: np.ndarray) -> float:
        return kernel_distance(a, b, subsets=20, subset_size=200, seed=0)[0]

    background, misaligned, candidates = draw(0.0, 600), draw(1.5, 600), draw(0.0, 600)
    assert kd(candidates, background) < 0  # like the background: KD below 0 here
    score = audio_prompt_adherence(background, misaligned, candidates, distance=kd)
    assert score > 0.99  # about 1: like the matching pairs


@pytest.mark.parametrize(("degree", "gamma", "message"), [
    (0, None, "degree must be an integer >= 1, got 0"),
    (-1, None, "degree must be an integer >= 1, got -1"),
    (3, float("nan"), "gamma must be a finite number > 0, got nan"),
    (3, -1.0, "gamma must be a finite number > 0, got -1.0"),
])  # fmt: skip
def test_kd_refuses_a_kernel_that_makes_no_sense(
    degree: int, gamma: float | None, message: str
) -> None:
    x, y = random_sets(0, n=20, m=20)
    with pytest.raises(ValueError, match=re.escape(message)):
        kernel_distance(x, y, subsets=2, subset_size=10, degree=degree, gamma=gamma)


def test_clap_score() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 1.0], [0.0, -1.0]])
    assert clap_score(a, b) == pytest.approx((np.sqrt(0.5) - 1.0) / 2)
    with pytest.raises(ValueError, match="pairs rows"):
        clap_score(a, b[:1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: frechet_distance(np.ones((5, 3)), np.ones((5, 4))), "dimension mismatch"),
        (lambda: frechet_distance(np.ones((1, 3)), np.ones((5, 3))), "at least 2"),
        (lambda: frechet_distance(np.full((5, 3), np.nan), np.ones((5, 3))), "x: contains NaN"),
        (lambda: frechet_distance(np.ones(5), np.ones((5, 1))), r"\[N, D\]"),
        (lambda: density_coverage(np.ones((6, 2)), np.ones((9, 2)), k=5), "real: needs at least 7"),
        (lambda: kernel_distance(np.ones((5, 3)), np.ones((5, 3)) * np.inf), "y: contains NaN"),
        (
            lambda: frechet_distance_from_stats(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)),
            "cov1",
        ),
    ],
)
def test_bad_input_is_named(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()

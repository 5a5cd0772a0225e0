import math

import pytest
import torch

from openriff.clap_bridge import slerp


def test_slerp_moves_along_the_great_circle() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g)
    ua, ub = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(a, b, 0.0), ua)
    torch.testing.assert_close(slerp(a, b, 1.0), ub)
    omega = torch.arccos((ua * ub).sum(1))
    for t in (0.25, 0.5, 0.9):
        out = slerp(a, b, t)
        torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
        # Constant angular speed: the angle to a is t * omega, to b (1 - t) * omega.
        torch.testing.assert_close(
            torch.arccos((out * ua).sum(1).clamp(-1, 1)), t * omega, atol=1e-4, rtol=1e-4
        )
        torch.testing.assert_close(
            torch.arccos((out * ub).sum(1).clamp(-1, 1)), (1 - t) * omega, atol=1e-4, rtol=1e-4
        )
    # One t per row.
    ts = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(slerp(a, b, ts)[2], ub[2])


def test_slerp_of_equal_and_opposite_embeddings() -> None:
    a = torch.tensor([[3.0, 4.0]])
    torch.testing.assert_close(slerp(a, a, 0.3), a / 5)
    # 90 degrees apart: halfway is 45 degrees.
    half = slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]), 0.5)
    torch.testing.assert_close(half, torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]))
    with pytest.raises(ValueError, match="opposite"):
        slerp(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]), 0.5)

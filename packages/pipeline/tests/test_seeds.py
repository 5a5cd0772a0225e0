"""One seed, several generators: the same sampling noise in every mode, bridge or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from openriff.pipeline.generation.options import derived_seed
from openriff.pipeline.generation.pipeline import AccompanimentPipeline


def tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(round(seconds * 48_000)) / 48_000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_a_seed_is_the_same_noise_with_and_without_a_bridge_draw(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The noise generator reaches sampling untouched by the bridge prior's draws."""
    states: list[torch.Tensor] = []
    real = AccompanimentPipeline.sample

    def spy(self: AccompanimentPipeline, call: Any, *args: Any, **kwargs: Any) -> Any:
        states.append(call.noise.get_state().clone())
        return real(self, call, *args, **kwargs)

    monkeypatch.setattr(AccompanimentPipeline, "sample", spy)
    pipeline = AccompanimentPipeline.from_pretrained(bundle)
    assert pipeline.model.bridge is not None
    context, reference = tone(1.0, 220.0), tone(0.8, 330.0)
    runs = {
        "prompt through the bridge": lambda: pipeline.generate(context, "warm bass", seed=7),
        "prompt without the bridge": lambda: pipeline.generate(
            context, "warm bass", seed=7, use_bridge=False
        ),
        "reference": lambda: pipeline.generate(context, None, reference, seed=7),
        "context alone": lambda: pipeline.generate(context, seed=7),
        "interpolation": lambda: pipeline.interpolate(
            "warm bass", "bright bass", context, points=2, seed=7
        ),
    }
    fresh = torch.Generator().manual_seed(7).get_state()
    for name, run in runs.items():
        states.clear()
        run()
        assert torch.equal(states[0], fresh), name  # the first draw is the seed's own
    # The bridge's draws come from another stream of the same seed.
    assert derived_seed(7, "bridge") == derived_seed(7, "bridge") != derived_seed(7, "noise")
    assert derived_seed(7, "bridge") != derived_seed(8, "bridge")

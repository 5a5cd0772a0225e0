"""Configs read from JSON are typed: a wrong type or a missing key names the field."""

from __future__ import annotations

import math

import pytest

from openriff.latent_diffusion.checkpoint import ModelConfig
from openriff.latent_diffusion.config import from_dict, to_dict
from openriff.latent_diffusion.train import TrainConfig


def test_a_round_trip_keeps_types() -> None:
    config = TrainConfig(model=ModelConfig(), steps=5, lr=1e-3, betas=(0.8, 0.9))
    data = to_dict(config)
    data["lr"] = 1  # JSON may write a float as an int
    again = from_dict(TrainConfig, data)
    assert again == TrainConfig(model=ModelConfig(), steps=5, lr=1.0, betas=(0.8, 0.9))
    assert isinstance(again.lr, float)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lr", "fast", r"TrainConfig\.lr: expected a number, got 'fast'"),
        ("steps", 2.5, r"TrainConfig\.steps: expected a whole number"),
        ("steps", True, r"TrainConfig\.steps: expected a whole number"),
        ("bf16", "yes", r"TrainConfig\.bf16: expected a bool"),
        ("schedule", 3, r"TrainConfig\.schedule: expected a str"),
        ("betas", 0.9, r"TrainConfig\.betas: expected a list"),
        ("betas", [0.9], r"TrainConfig\.betas: expected 2 items"),
        ("model", [1], r"TrainConfig\.model: expected an object for ModelConfig"),
        ("p_mean", "high", r"TrainConfig\.p_mean: expected a number"),
    ],
)
def test_wrong_types_name_the_field(field: str, value: object, message: str) -> None:
    data = to_dict(TrainConfig(model=ModelConfig()))
    data[field] = value
    with pytest.raises(ValueError, match=message):
        from_dict(TrainConfig, data)


def test_missing_keys_and_non_objects_are_named() -> None:
    data = to_dict(TrainConfig(model=ModelConfig()))
    del data["model"]
    with pytest.raises(ValueError, match="TrainConfig: missing keys model"):
        from_dict(TrainConfig, data)
    with pytest.raises(ValueError, match="expected a JSON object"):
        from_dict(TrainConfig, [1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("lr", math.nan), ("lr", -1.0), ("grad_clip", 0.0), ("min_lr", -1e-6),
     ("ema_decay", 1.0), ("warmup_steps", -1), ("betas", (0.9, 1.0))],
)  # fmt: skip
def test_train_settings_out_of_range_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(model=ModelConfig(), **{field: value})  # type: ignore[arg-type]

"""The controls of AccompanimentPipeline on a tiny bundle: in/outpainting, variations,
loops, interpolation, style grounding, whole-song mode."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import random_codec

from openriff.cae import from_pretrained
from openriff.pipeline.bundle import AccompanimentModel
from openriff.pipeline.generation.pipeline import AccompanimentPipeline

RATE = 48_000


@pytest.fixture(scope="module")
def pipeline(bundle: Path) -> AccompanimentPipeline:
    return AccompanimentPipeline.from_pretrained(bundle)


def tone(seconds: float, freq: float = 110.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode(pipeline: AccompanimentPipeline, wave: np.ndarray) -> torch.Tensor:
    return pipeline.model.codec.encode(torch.from_numpy(wave)[None, None])[0]  # (D, T)


def overlapping(frames: int, hop: int, start: float, end: float) -> np.ndarray:
    index = np.arange(frames)
    return (index * hop < end * RATE) & ((index + 1) * hop > start * RATE)


def test_inpainting_keeps_the_rest(pipeline: AccompanimentPipeline) -> None:
    stem, hop = tone(6.0), int(pipeline.hop)
    out = pipeline.inpaint(stem, 1.0, 1.5, steps=2, seed=0)
    assert out.audio.shape == (1, 2, len(stem))
    z = encode(pipeline, stem).numpy()
    inside = overlapping(z.shape[-1], hop, 1.0, 1.5)
    assert out.settings["regenerated_frames"] == inside.sum() == 7
    for channel in out.latents[0]:  # both pseudo-stereo channels keep the stem's latents
        assert np.array_equal(channel[:, ~inside], z[:, ~inside])
        assert np.abs(channel[:, inside] - z[:, inside]).mean() > 0.1
    # Audio: outside the region the output is the stem's codec round trip (same seed).
    codec = pipeline.model.codec
    trip = codec.decode(torch.from_numpy(z)[None], generator=torch.Generator().manual_seed(0))
    error = out.audio[0, 0] - trip[0, 0, : len(stem)].numpy()
    frame_rms = np.sqrt(np.mean(error[: len(error) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    kept = ~inside[: len(frame_rms)]
    assert frame_rms[kept].mean() < 0.5 * frame_rms[inside[: len(frame_rms)]].mean()
    far = np.arange(len(frame_rms)) >= np.flatnonzero(inside).max() + 2 * codec.chunk_latents
    assert far.sum() > 10
    assert frame_rms[far].max() < 1e-6


def test_outpainting_extends_either_end(pipeline: AccompanimentPipeline) -> None:
    stem, hop = tone(2.0), int(pipeline.hop)
    after = pipeline.inpaint(stem, 2.0, 3.0, steps=2, seed=1, stereo_width=0.0)
    assert after.audio.shape == (1, 1, 3 * RATE)
    frames = after.latents.shape[-1]
    padded = np.zeros(frames * hop, dtype=np.float32)
    padded[: len(stem)] = stem
    kept = ~overlapping(frames, hop, 2.0, 3.0)
    assert kept.sum() == 23
    assert np.array_equal(after.latents[0, 0][:, kept], encode(pipeline, padded).numpy()[:, kept])
    before = pipeline.inpaint(stem, -0.5, 0.2, steps=2, seed=1)
    assert before.audio.shape == (1, 2, round(2.5 * RATE))
    context = tone(2.5, 220.0)
    with_context = pipeline.inpaint(stem, -0.5, 0.2, context, prompt="bass", steps=2, seed=1)
    assert with_context.audio.shape == (1, 2, round(2.5 * RATE))
    assert not np.array_equal(with_context.audio, before.audio)
    with pytest.raises(ValueError, match="shorter than the output"):
        pipeline.inpaint(stem, 2.0, 3.0, tone(2.0), steps=2)
    with pytest.raises(ValueError, match="start < end"):
        pipeline.inpaint(stem, 1.0, 1.0)
    with pytest.raises(ValueError, match="whole stem"):
        pipeline.inpaint(stem, 0.0, 2.0)


def test_variations_stay_closer_with_less_strength(pipeline: AccompanimentPipeline) -> None:
    stem = tone(1.5)
    z = encode(pipeline, stem).numpy()
    distances = []
    for strength in (0.1, 0.5, 1.0):
        out = pipeline.vary(stem, strength, tone(1.5, 220.0), steps=10, seed=0)
        assert out.audio.shape == (1, 2, len(stem))
        distances.append(float(np.abs(out.latents[0, 0] - z).mean()))
    assert distances[0] < 0.1 * distances[1] < distances[2]
    a = pipeline.vary(stem, 0.5, steps=4, seed=2, prompt="bass")
    b = pipeline.vary(stem, 0.5, steps=4, seed=2, prompt="bass")
    assert np.array_equal(a.audio, b.audio)
    with pytest.raises(ValueError, match="strength"):
        pipeline.vary(stem, 0.0)


def seam(x: np.ndarray) -> tuple[float, float]:
    """The wrap-around jump of a loop and the largest jump between neighbouring samples."""
    return float(abs(x[0] - x[-1])), float(np.abs(np.diff(x)).max())


def test_seam_measure_catches_a_bad_loop() -> None:
    t = np.arange(4800)
    good = np.cos(2 * np.pi * 3 * t / len(t))
    bad = np.cos(2 * np.pi * 3.5 * t / len(t))
    assert seam(good)[0] <= seam(good)[1]
    assert seam(bad)[0] > 100 * seam(bad)[1]


@pytest.mark.parametrize(("bars", "bpm"), [(1, 120.0), (2, 97.0)])
def test_loops_are_seamless(pipeline: AccompanimentPipeline, bars: int, bpm: float) -> None:
    out = pipeline.loop(bars, bpm, steps=2, seed=0)
    length = round(bars * 4 * 60 / bpm * RATE)
    assert out.audio.shape == (1, 2, length)
    assert np.abs(out.audio).max() > 1e-3  # something to join
    for channel in out.audio[0]:
        jump, interior = seam(channel)
        assert jump <= interior
        # Played twice, the join is no louder than any other moment of the same length.
        twice = np.tile(channel, 2)
        energy = np.convolve(np.diff(twice) ** 2, np.ones(256), mode="valid")
        joint = energy[length - 128]
        assert joint <= np.percentile(energy, 99.5)


def test_loop_with_context_tempo_and_bad_input(pipeline: AccompanimentPipeline) -> None:
    out = pipeline.loop(1, 120.0, tone(3.0, 220.0), prompt="drums", steps=2, seed=0)
    assert out.audio.shape == (1, 2, RATE * 2)
    # 2 s is 23.4 latent frames: 23 frames, resampled (-32.6 cents), or kept (122.3 bpm).
    assert out.settings["pitch_shift_cents"] == pytest.approx(1200 * np.log2(23 * 4096 / 96000))
    kept = pipeline.loop(1, 120.0, steps=2, seed=0, exact_tempo=False)
    assert kept.audio.shape == (1, 2, 23 * 4096)
    assert kept.settings["pitch_shift_cents"] == 0.0
    assert kept.settings["loop_bpm"] == pytest.approx(120.0 * 96000 / (23 * 4096))
    assert seam(kept.audio[0, 0])[0] <= seam(kept.audio[0, 0])[1]
    with pytest.raises(ValueError, match="shorter than the loop"):
        pipeline.loop(2, 120.0, tone(1.0), steps=2)
    with pytest.raises(ValueError, match="bpm"):
        pipeline.loop(1, 1000.0)


def test_interpolation_between_references_and_prompts(
    pipeline: AccompanimentPipeline, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, tone(1.0, 220.0), RATE)
    sf.write(b, np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32), RATE)
    out = pipeline.interpolate(a, b, duration=1.0, points=3, steps=2, seed=5)
    assert out.audio.shape == (3, 2, RATE)
    assert out.settings["t"] == [0.0, 0.5, 1.0]
    start = pipeline.generate(reference=a, duration=1.0, steps=2, seed=5)
    np.testing.assert_allclose(out.audio[0], start.audio[0], atol=1e-5)
    end = pipeline.generate(reference=b, duration=1.0, steps=2, seed=5)
    np.testing.assert_allclose(out.audio[2], end.audio[0], atol=1e-5)
    # The middle point lies between the ends.
    z = out.latents

    def dist(i: int, j: int) -> float:
        return float(np.abs(z[i] - z[j]).max())

    assert 0 < dist(0, 1) < dist(0, 2)
    assert 0 < dist(1, 2) < dist(0, 2)
    texts = pipeline.interpolate("warm bass", "bright lead", tone(0.8), points=2, steps=2)
    assert texts.audio.shape == (2, 2, len(tone(0.8)))
    with pytest.raises(ValueError, match="points"):
        pipeline.interpolate("a", "b", duration=1.0, points=1)


def test_style_grounding_pulls_the_latent_mean(
    pipeline: AccompanimentPipeline, tmp_path: Path
) -> None:
    style = tmp_path / "style.wav"
    sf.write(style, np.random.default_rng(1).normal(0, 0.3, 2 * RATE).astype(np.float32), RATE)
    target = encode(pipeline, sf.read(style, dtype="float32")[0]).mean(-1).numpy()
    context = tone(1.0)
    plain = pipeline.generate(context, steps=8, seed=0, stereo_width=0.0)
    styled = pipeline.generate(context, steps=8, seed=0, stereo_width=0.0, style_reference=style)
    assert styled.settings["style_reference"] == str(style)

    def gap(out: object) -> float:
        return float(np.abs(out.latents[0, 0].mean(-1) - target).mean())  # type: ignore[attr-defined]

    assert gap(styled) < 0.7 * gap(plain)


def test_whole_song_mode(pipeline: AccompanimentPipeline, tmp_path: Path) -> None:
    reference = tmp_path / "ref.wav"
    sf.write(reference, tone(1.0, 330.0), RATE)
    out = pipeline.song(["warm bass", reference, "bright keys"], duration=1.2, steps=2, seed=0)
    assert out.audio.shape == (3, 2, round(1.2 * RATE))
    assert out.mix is not None
    assert out.mix.shape == (2, round(1.2 * RATE))
    gain = out.settings["mix_gain"]
    np.testing.assert_allclose(out.mix, out.audio.sum(0) * gain, atol=1e-6)
    assert out.settings["parts"] == ["warm bass", str(reference), "bright keys"]
    # Each stem after the first fits the ones before: conditioned on their sum.
    alone = pipeline.generate(prompt="bright keys", duration=1.2, steps=2, seed=0)
    assert not np.allclose(alone.audio[0], out.audio[2])
    context = tone(1.2, 55.0)
    over = pipeline.song(["warm bass"], context, steps=2, seed=0)
    np.testing.assert_allclose(
        over.mix, (over.audio[0] + context) * over.settings["mix_gain"], atol=1e-6
    )
    with pytest.raises(ValueError, match="at least one"):
        pipeline.song([], duration=1.0)


def test_stereo_codec_gives_true_stereo(bundle: Path, tmp_path: Path) -> None:
    model = AccompanimentModel.load(bundle)
    model.codec = from_pretrained(random_codec(tmp_path / "stereo", channels=2))
    pipeline = AccompanimentPipeline(model)
    context = np.stack([tone(1.0, 220.0), tone(1.0, 330.0)])  # (2, S)
    out = pipeline.generate(context, steps=2, seed=0)
    assert out.audio.shape == (1, 2, RATE)
    assert out.latents is not None
    assert out.latents.shape[1] == 1  # one latent sequence, decoded to two channels
    assert out.settings["stereo_width"] is None
    assert not np.allclose(out.audio[0, 0], out.audio[0, 1])
    edited = pipeline.inpaint(out.audio[0], 0.2, 0.5, context, steps=2, seed=0)
    assert edited.audio.shape == (1, 2, RATE)
    assert pipeline.loop(1, 120.0, steps=2, seed=0).audio.shape == (1, 2, 2 * RATE)

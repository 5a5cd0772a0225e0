"""AccompanimentPipeline on a tiny bundle: conditioning settings, windows, seeds, inputs."""

import itertools
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openriff.pipeline.generation import engine
from openriff.pipeline.generation.pipeline import AccompanimentPipeline

RATE = 48_000
HOP = 4096


@pytest.fixture(scope="module")
def pipeline(bundle: Path, device: torch.device) -> AccompanimentPipeline:
    return AccompanimentPipeline.from_pretrained(bundle, device=device)


def context_wave(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_every_conditioning_setting(pipeline: AccompanimentPipeline, tmp_path: Path) -> None:
    reference = tmp_path / "ref.wav"
    sf.write(reference, context_wave(1.0), RATE)
    context = context_wave(1.3)  # not a whole number of latent frames
    cases = [
        (dict(context=context, reference=reference), "CLAP_A + context"),
        (dict(context=context, prompt="warm bass"), "CLAP_T + context"),
        (dict(context=context), "context only"),
        (dict(reference=reference, duration=1.3), "CLAP_A only"),
        (dict(prompt="warm bass", duration=1.3), "CLAP_T only"),
        (dict(duration=1.3), "unconditional"),
    ]
    for kwargs, setting in cases:
        out = pipeline.generate(**kwargs, steps=2, seed=0)
        assert out.audio.shape == (1, 2, len(context)), setting  # pseudo-stereo
        assert np.isfinite(out.audio).all()
        assert out.settings["conditioning"] == setting
    plain = pipeline.generate(prompt="warm bass", duration=1.0, steps=2, seed=0, use_bridge=False)
    assert plain.settings["use_bridge"] is False


def test_seeds_samplers_candidates_and_windows(pipeline: AccompanimentPipeline) -> None:
    context = context_wave(1.0)
    a = pipeline.generate(context, steps=2, seed=3)
    b = pipeline.generate(context, steps=2, seed=3)
    c = pipeline.generate(context, steps=2, seed=4)
    assert np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)
    assert a.settings["seed"] == 3
    mono = pipeline.generate(context, steps=2, seed=3, stereo_width=0.0)
    assert mono.audio.shape == (1, 1, len(context))
    for sampler in ("heun", "euler", "ddim"):
        out = pipeline.generate(context, steps=2, seed=1, sampler=sampler, num_candidates=2)
        assert out.audio.shape == (2, 2, len(context)), sampler
    # An EDM model's estimates are integrated, not jumped to (a consistency model's are).
    with pytest.raises(ValueError, match=r"'consistency' .* does not fit .* 'edm': use ddim"):
        pipeline.generate(context, steps=2, seed=1, sampler="consistency")
    # Longer than the training window (8 frames): generated in continuing windows.
    long = context_wave(30 * HOP / RATE)
    assert pipeline.window == 8
    assert pipeline.generate(long, steps=2, seed=0).audio.shape == (1, 2, len(long))


def test_the_public_api_loads_the_default_model_without_arguments(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openriff.pipeline as api

    assert api.AccompanimentPipeline is AccompanimentPipeline
    assert {"AccompanimentPipeline", "Sampling", "Generation", "default_bundle"} <= set(api.__all__)
    monkeypatch.setenv("OPENRIFF_BUNDLE", str(bundle))
    loaded = api.AccompanimentPipeline.from_pretrained()
    assert loaded.root == bundle
    monkeypatch.setenv("OPENRIFF_BUNDLE", str(bundle.parent / "nothing"))
    with pytest.raises(FileNotFoundError, match="no model bundle found at OPENRIFF_BUNDLE="):
        api.AccompanimentPipeline.from_pretrained()


def test_a_clap_embedding_given_as_such_or_drawn_unconditionally(
    pipeline: AccompanimentPipeline, tmp_path: Path
) -> None:
    context = context_wave(0.6)
    reference = context_wave(0.8) * 0.5
    by_reference = pipeline.generate(context, reference=reference, steps=2, seed=0)
    embedding = pipeline.embed_reference(reference).cpu().numpy()  # (1, E), unit norm
    np.save(tmp_path / "e.npy", 3.0 * embedding[0])  # [E], not unit norm
    given = pipeline.generate(context, clap_embedding=tmp_path / "e.npy", steps=2, seed=0)
    np.testing.assert_allclose(given.audio, by_reference.audio, atol=1e-4)  # the same condition
    assert given.settings["conditioning"] == "CLAP_E + context"
    assert given.settings["clap_embedding"] == str(tmp_path / "e.npy")
    drawn = pipeline.generate(context, clap_unconditional=True, steps=2, seed=0)
    assert drawn.settings["conditioning"] == "CLAP_A* + context"
    again = pipeline.generate(context, clap_unconditional=True, steps=2, seed=0)
    assert np.array_equal(drawn.audio, again.audio)
    assert not np.array_equal(drawn.audio, pipeline.generate(context, steps=2, seed=0).audio)
    dim = embedding.shape[1]
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    for kwargs, message in [
        (dict(clap_embedding=np.ones(dim + 1)), rf"must be {dim} numbers"),
        (dict(clap_embedding=np.full(dim, np.nan)), "NaN"),
        (dict(clap_embedding=np.zeros((1, dim))), "all zeros"),
        (dict(clap_embedding=tmp_path / "bad.npy"), "not a .npy array"),
        (dict(clap_embedding=embedding, prompt="bass"), "give one CLAP condition"),
        (dict(clap_unconditional=True, clap_embedding=embedding), "give one CLAP condition"),
    ]:
        with pytest.raises(ValueError, match=message):
            pipeline.generate(context, steps=2, **kwargs)
    with pytest.raises(FileNotFoundError, match="no such file"):
        pipeline.generate(context, clap_embedding=tmp_path / "none.npy", steps=2)


def test_bad_input(pipeline: AccompanimentPipeline) -> None:
    context = context_wave(0.5)
    for kwargs, message in [
        (dict(steps=0), "steps"),
        (dict(sampler="dpm"), "sampler"),
        (dict(cfg_clap=-1.0), "cfg_clap"),
        (dict(stereo_width=2.0), "stereo_width"),
        (dict(num_candidates=0), "num_candidates"),
    ]:
        with pytest.raises(ValueError, match=message):
            pipeline.generate(context, **kwargs)
    with pytest.raises(ValueError, match="duration"):
        pipeline.generate()
    with pytest.raises(ValueError, match="NaN"):
        pipeline.generate(np.full(1000, np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        pipeline.generate(np.zeros((1, 2, 3), dtype=np.float32))


def test_few_steps_and_strong_guidance_stay_in_the_codec_range(
    pipeline: AccompanimentPipeline,
) -> None:
    # Latents of a tanh-bounded codec; guidance extrapolates estimates out of that range.
    assert pipeline.model.codec.latent_bound == 1.0
    context = context_wave(1.0)
    for steps in (2, 4):
        out = pipeline.generate(context, steps=steps, seed=0, cfg_context=8.0)
        assert out.latents is not None
        assert np.abs(out.latents).max() <= 1.0, steps
        assert out.settings["clip_estimate"] is True
    free = pipeline.generate(context, steps=4, seed=0, cfg_context=8.0, clip_estimate=False)
    assert free.latents is not None
    assert np.abs(free.latents).max() > 1.5  # what clipping prevents


def test_pseudo_stereo_channels_are_coherent(pipeline: AccompanimentPipeline) -> None:
    # Decoded one by one, the channels got independent phases: correlation ~0.1 and a
    # mono fold-down 2.5 dB down. Decoded together they share one.
    out = pipeline.generate(context_wave(1.0), steps=2, seed=0, stereo_width=0.4)
    left, right = out.audio[0].astype(np.float64)
    assert (left * right).sum() / np.sqrt((left**2).sum() * (right**2).sum()) > 0.9
    fold = ((left + right) / 2) ** 2
    assert 10 * np.log10(((left**2).mean() + (right**2).mean()) / 2 / fold.mean()) < 1.0


def test_a_declared_minimum_step_count_warns_below_it(bundle: Path, tmp_path: Path) -> None:
    declared = AccompanimentPipeline.from_pretrained(edited(bundle, tmp_path / "m", "min_steps", 4))
    context = context_wave(0.5)
    with pytest.warns(UserWarning, match="2 sampling steps: this model declares at least 4"):
        declared.generate(context, steps=2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        declared.generate(context, steps=4, seed=0)
    for i, bad in enumerate((0, 2.5, True, "4")):
        with pytest.raises(ValueError, match="'min_steps' must be a positive integer"):
            AccompanimentPipeline.from_pretrained(
                edited(bundle, tmp_path / f"b{i}", "min_steps", bad)
            )
    folder = recommending(bundle, tmp_path / "cons", {"sampler": "consistency"})
    with pytest.raises(ValueError, match=r"the bundle recommends.* does not fit"):
        AccompanimentPipeline.from_pretrained(folder)


def edited(bundle: Path, folder: Path, key: str, value: object) -> Path:
    """A copy of ``bundle`` whose bundle.json sets ``key`` to ``value``."""
    shutil.copytree(bundle, folder)
    info = json.loads((folder / "bundle.json").read_text())
    info[key] = value
    (folder / "bundle.json").write_text(json.dumps(info))
    return folder


def recommending(bundle: Path, folder: Path, sampling: object) -> Path:
    """A copy of ``bundle`` whose bundle.json recommends ``sampling``."""
    return edited(bundle, folder, "sampling", sampling)


def test_bundle_recommended_sampling(
    bundle: Path, pipeline: AccompanimentPipeline, tmp_path: Path
) -> None:
    recommended = AccompanimentPipeline.from_pretrained(
        recommending(bundle, tmp_path / "rec", {"cfg_context": 3.0, "steps": 3})
    )
    assert pipeline.model.sampling == {}
    context = context_wave(0.5)
    out = recommended.generate(context, seed=0)
    assert (out.settings["cfg_context"], out.settings["steps"]) == (3.0, 3)
    assert out.settings["cfg_clap"] == 1.25  # not recommended: the library's default
    explicit = pipeline.generate(context, seed=0, cfg_context=3.0, steps=3)
    assert np.array_equal(out.audio, explicit.audio)
    # A caller's value wins; the methods taking **options use the recommendation too.
    assert recommended.generate(context, seed=0, cfg_context=1.0).settings["cfg_context"] == 1.0
    varied = recommended.vary(out.audio[0], 0.5, context, seed=0)
    assert (varied.settings["cfg_context"], varied.settings["steps"]) == (3.0, 3)
    for i, (sampling, message) in enumerate(
        [
            ({"cfg": 3.0}, "unknown sampling settings"),
            ({"seed": 1}, "unknown sampling settings"),
            ({"cfg_context": 50.0}, "recommended sampling is invalid.*cfg_context"),
            ([3.0], "mapping"),
        ]
    ):
        folder = recommending(bundle, tmp_path / f"bad-{i}", sampling)
        with pytest.raises(ValueError, match=message):
            AccompanimentPipeline.from_pretrained(folder)


def declaring(bundle: Path, folder: Path, one_pass_frames: object) -> Path:
    """A copy of ``bundle`` whose bundle.json declares ``one_pass_frames``."""
    return edited(bundle, folder, "one_pass_frames", one_pass_frames)


def test_a_bundle_may_declare_one_pass_up_to_a_length(
    bundle: Path, pipeline: AccompanimentPipeline, tmp_path: Path
) -> None:
    """Windows overlap and seam below the training length; a bundle whose backbone
    extrapolates declares how far it samples in one pass, and then has no seam there."""
    one_pass = AccompanimentPipeline.from_pretrained(declaring(bundle, tmp_path / "b", 64))
    samples = pipeline.samples(30)  # 30 frames: beyond the tiny bundle's 8-frame windows
    assert len(pipeline.seams(samples)) >= 3
    assert all(0 < a < b for a, b in itertools.pairwise(pipeline.seams(samples)))
    assert one_pass.seams(samples) == []
    # 65 frames: windows [0, 64) and [1, 65), handing over in the middle of [1, 64).
    assert one_pass.seams(pipeline.samples(65)) == [
        pytest.approx(pipeline.samples(1) * 32.5 / 48_000)
    ]
    context = context_wave(samples / 48_000)
    windowed = pipeline.generate(context, seed=0, steps=2)
    single = one_pass.generate(context, seed=0, steps=2)
    assert single.audio.shape == windowed.audio.shape
    assert np.isfinite(single.audio).all()
    assert not np.allclose(single.audio, windowed.audio)
    assert (windowed.settings["pass_frames"], single.settings["pass_frames"]) == (8, 30)
    # Below one window both are the same pass.
    short = context_wave(pipeline.samples(8) / 48_000)
    np.testing.assert_array_equal(
        one_pass.generate(short, seed=0, steps=2).audio,
        pipeline.generate(short, seed=0, steps=2).audio,
    )
    for bad in (0, 2.5, "64", True):
        with pytest.raises(ValueError, match="'one_pass_frames' must be a positive integer"):
            AccompanimentPipeline.from_pretrained(declaring(bundle, tmp_path / f"x{bad}", bad))


def test_memory_shortens_a_declared_pass(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where memory allows only 16 frames of a declared 64 (measured on CUDA,
    latent_diffusion.memory), the generation is the one of a bundle declaring 16."""
    asked: list[tuple[int, int]] = []

    def sixteen(denoiser, shape, cond, low, high, **kwargs):  # type: ignore[no-untyped-def]
        asked.append((low, high))
        return min(high, 16)

    declared_16 = AccompanimentPipeline.from_pretrained(declaring(bundle, tmp_path / "a", 16))
    context = context_wave(declared_16.samples(40) / 48_000)
    want = declared_16.generate(context, seed=3, steps=2)
    monkeypatch.setattr(engine, "longest_pass", sixteen)
    capped = AccompanimentPipeline.from_pretrained(declaring(bundle, tmp_path / "b", 64))
    got = capped.generate(context, seed=3, steps=2)
    assert asked[-1] == (8, 40)  # the training window, and all of the declared pass needed
    assert got.settings["pass_frames"] == want.settings["pass_frames"] == 16
    np.testing.assert_array_equal(got.audio, want.audio)


def test_bf16_generation_agrees_with_fp32_and_is_recorded(bundle: Path) -> None:
    # bf16 autocast (the CUDA default) checked on the CPU: the same draw, within rounding.
    fp32 = AccompanimentPipeline.from_pretrained(bundle)
    bf16 = AccompanimentPipeline.from_pretrained(bundle, precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    context = context_wave(1.0)
    full = fp32.generate(context, steps=4, seed=5, sampler="euler")
    half = bf16.generate(context, steps=4, seed=5, sampler="euler")
    assert (full.settings["precision"], half.settings["precision"]) == ("fp32", "bf16")
    error = np.linalg.norm(half.latents - full.latents) / np.linalg.norm(full.latents)
    assert 0 < error < 0.05, error
    assert half.audio.dtype == np.float32
    assert np.isfinite(half.audio).all()
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        AccompanimentPipeline.from_pretrained(bundle, precision="half")


def test_surround_and_narrow_band_contexts_are_taken(
    pipeline: AccompanimentPipeline, tmp_path: Path
) -> None:
    # 5.1 folds down to stereo as ITU-R BS.775 does (LFE left out); other layouts
    # alternate; 8 kHz is resampled, with a warning that the band is narrow.
    from openriff.pipeline.audio_io import fold_down, load_input

    levels = torch.tensor([1.0, 2.0, 3.0, 100.0, 4.0, 5.0])[:, None].expand(6, 10)
    g = 0.5**0.5
    torch.testing.assert_close(
        fold_down(levels)[:, 0], torch.tensor([1 + g * 3 + g * 4, 2 + g * 3 + g * 5])
    )
    seven_one = torch.arange(8.0)[:, None].expand(8, 4)
    torch.testing.assert_close(
        fold_down(seven_one)[:, 0], torch.tensor([0 + g * 2 + g * (4 + 6), 1 + g * 2 + g * (5 + 7)])
    )
    three = torch.tensor([1.0, 2.0, 5.0])[:, None].expand(3, 4)
    torch.testing.assert_close(fold_down(three)[:, 0], torch.tensor([3.0, 2.0]))
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "phone.wav", np.tile((0.2 * np.sin(2 * np.pi * 220 * t))[:, None], (1, 6)),
             8000)  # fmt: skip
    with pytest.warns(UserWarning, match="is 8000 Hz: it holds nothing above 4 kHz"):
        wave = load_input(tmp_path / "phone.wav", "context")
    assert wave.shape == (2, RATE)
    with pytest.warns(UserWarning, match="nothing above 4 kHz"):
        out = pipeline.generate(str(tmp_path / "phone.wav"), steps=2, seed=0)
    assert out.audio.shape[-1] == RATE
    assert np.isfinite(out.audio).all()


def test_a_compiled_denoiser_samples_what_the_eager_one_does(
    bundle: Path, device: torch.device
) -> None:
    eager = AccompanimentPipeline.from_pretrained(bundle, device=device)
    compiled = AccompanimentPipeline.from_pretrained(bundle, device=device, compile=True)
    options = {"duration": 1.0, "steps": 3, "seed": 4, "stereo_width": 0.0}
    a = eager.generate(**options)
    b = compiled.generate(**options)
    assert compiled.denoiser() is not compiled.model.denoiser  # it went through the compiler
    assert (a.settings["compile"], b.settings["compile"]) == (False, True)
    np.testing.assert_allclose(b.latents, a.latents, rtol=0, atol=1e-4)
    assert not np.array_equal(b.latents, np.zeros_like(b.latents))

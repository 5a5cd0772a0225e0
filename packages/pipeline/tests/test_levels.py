"""Levels: loudness in (contexts at the trained loudness), stems out (at the context's
loudness plus the bundle's ratio), and never a clipped sample."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openriff.pipeline.cli import main
from openriff.pipeline.data.pairs import Pair, PairConfig, level_pair, render_pair
from openriff.pipeline.generation.pipeline import AccompanimentPipeline
from openriff.pipeline.levels import (
    OUTPUT_PEAK,
    Levels,
    fit_output,
    gain_to,
    loudness,
)

RATE = 48_000


def sine(seconds: float, hz: float, amplitude: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def chords(seconds: float, level_db: float) -> np.ndarray:
    """A context: three tones and a pulse, scaled to ``level_db`` LUFS."""
    t = np.arange(round(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * hz * t) for hz in (220.0, 277.2, 329.6))
    wave = wave * (0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0))
    wave = wave.astype(np.float32)
    return wave * np.float32(10 ** ((level_db - loudness(wave)) / 20))


def test_loudness_is_bs1770() -> None:
    # BS.1770: a 997 Hz sine at full scale reads -3.01 LUFS; level follows amplitude.
    assert loudness(sine(3.0, 997.0, 1.0)) == pytest.approx(-3.01, abs=0.05)
    assert loudness(sine(3.0, 997.0, 0.1)) == pytest.approx(-23.01, abs=0.05)
    assert loudness(np.zeros(RATE, np.float32)) == -math.inf
    # Shorter than one 400 ms block: the RMS level instead (0.1 amplitude: -23.01 dBFS).
    assert loudness(sine(0.2, 997.0, 0.1)) == pytest.approx(-23.01, abs=0.1)


LOUDNESS_CASES = [(48_000, 3.7, 2), (48_000, 30.0, 1), (44_100, 5.3, 2), (48_000, 0.45, 2)]


@pytest.mark.parametrize(("rate", "seconds", "channels"), LOUDNESS_CASES)
def test_loudness_equals_pyloudnorm(rate: int, seconds: float, channels: int) -> None:
    # Filtered a chunk at a time (30 s is longer than a chunk) and gated as BS.1770-4 and
    # pyloudnorm gate: the same value.
    import pyloudnorm

    rng = np.random.default_rng(int(seconds * 10))
    n = round(seconds * rate)
    gate = np.sin(2 * np.pi * 0.3 * np.arange(n) / rate) > -0.5
    x = (0.1 * rng.standard_normal((channels, n)) * gate).astype(np.float32)
    x[:, : n // 3] *= 1e-4  # a quiet third: both gates matter
    reference = pyloudnorm.Meter(rate).integrated_loudness(x.T.astype(np.float64))
    assert loudness(x, rate) == pytest.approx(reference, abs=1e-9)


def test_loudness_of_a_long_stem_needs_less_memory_than_the_stem() -> None:
    # pyloudnorm copies the signal in float64 twice (about 5x a float32 stereo stem, 4 GB
    # for 30 minutes); here the peak stays below the stem's own size.
    import tracemalloc

    x = (0.1 * np.random.default_rng(0).standard_normal((2, 120 * RATE))).astype(np.float32)
    tracemalloc.start()
    loudness(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < x.nbytes, (peak, x.nbytes)


def test_gain_to_reaches_the_target_within_the_peak_ceiling() -> None:
    quiet = sine(2.0, 440.0, 0.01)
    gain = gain_to(quiet, -14.0)
    assert loudness(quiet * 10 ** (gain / 20)) == pytest.approx(-14.0, abs=0.05)
    assert gain_to(np.zeros(RATE, np.float32), -14.0) == 0.0  # silence stays silence
    # One loud click in near-silence: raised only until the click reaches the ceiling.
    click = np.zeros(2 * RATE, np.float32)
    click[RATE] = 0.5
    click[: RATE // 2] = sine(0.5, 440.0, 1e-4)
    assert 0.5 * 10 ** (gain_to(click, -14.0) / 20) == pytest.approx(4.0, rel=1e-6)


def test_fit_output_sets_levels_and_never_clips() -> None:
    stems = np.stack([sine(2.0, 110.0, 0.05)[None], sine(2.0, 110.0, 0.5)[None]])
    out, report = fit_output(stems, -20.0)
    for stem, row in zip(out, report, strict=True):
        assert loudness(stem) == pytest.approx(-20.0, abs=0.05) == row["lufs"]
        assert row["peak_limited_db"] == 0.0
    loud, report = fit_output(stems, 0.0)  # a sine at 0 LUFS would peak at +3 dBFS
    assert np.abs(loud).max() <= OUTPUT_PEAK
    # Limiting a steady sine only turns it down: it is limited by what it exceeds the
    # ceiling by (4.8 dB at 110 Hz), and comes out that far below the target, saying so.
    for stem, row in zip(loud, report, strict=True):
        assert row["limited_db"] == pytest.approx(4.78, abs=0.05)
        assert row["peak_limited_db"] == pytest.approx(-4.78, abs=0.05)
        assert loudness(stem) == pytest.approx(-4.78, abs=0.05) == row["lufs"]


def plucked_bass(seconds: float) -> np.ndarray:
    """Bass notes with sharp attacks (crest factor ~ 15 dB), two a second."""
    t = np.arange(round(0.5 * RATE)) / RATE
    note = np.exp(-6 * t) * (np.sin(2 * np.pi * 55 * t) + 0.6 * np.sin(2 * np.pi * 110 * t))
    note[:200] += np.hanning(400)[:200] * 2.0  # a click on the attack: the peaks
    return np.tile(note, round(seconds * 2)).astype(np.float32)[None] * 0.1


def test_limited_stems_reach_their_loudness_without_a_clipped_sample() -> None:
    from openriff.pipeline.evaluation.measures import clipped_samples
    from openriff.pipeline.levels import MAX_LIMIT_DB, limit

    bass = plucked_bass(4.0)
    for target, limited in ((-30.0, 0.0), (-20.0, 3.9), (-16.0, 9.5), (0.0, MAX_LIMIT_DB)):
        out, (row,) = fit_output(bass[None], target)
        assert np.abs(out).max() <= OUTPUT_PEAK
        assert clipped_samples(out[0]) == 0  # no sample over, no flat top
        assert row["limited_db"] == pytest.approx(limited, abs=0.2)
        assert row["lufs"] == pytest.approx(loudness(out[0]), abs=1e-3)
        if limited < MAX_LIMIT_DB:  # raised again by what limiting took: on target
            assert row["lufs"] == pytest.approx(target, abs=0.1)
            assert row["peak_limited_db"] == 0.0
        else:  # the limiter's range ends: quieter than the target, and said
            assert row["peak_limited_db"] == pytest.approx(row["lufs"] - target, abs=1e-3)
            assert row["peak_limited_db"] < -5.0
    # The limiter alone: below the ceiling it is the identity, above it never exceeds it.
    quiet = 0.5 * bass
    np.testing.assert_array_equal(limit(quiet, 1.0)[0], quiet)
    assert limit(quiet, 1.0)[1] == 0.0
    hot, reduction = limit(8 * bass, 0.9)
    assert np.abs(hot).max() <= 0.9
    assert reduction == pytest.approx(20 * math.log10(8 * np.abs(bass).max() / 0.9), abs=0.01)


def test_pairs_are_levelled_to_the_preparation_loudness() -> None:
    waves = {"bass": sine(4.0, 55.0, 0.02), "keys": chords(4.0, -31.0), "pad": chords(4.0, -35.0)}
    base = Pair("s", 0, 2 * RATE, "bass", ("keys",), None, "bass", ())
    config = PairConfig(window=2 * RATE)
    rng = np.random.default_rng(0)
    level = level_pair(base, waves, -14.0, 0.0, rng)
    context, target, _ = render_pair(level, waves, config.reference)
    assert context is not None
    assert loudness(context) == pytest.approx(-14.0, abs=0.05)
    ratio = loudness(waves["bass"][: 2 * RATE]) - loudness(waves["keys"][: 2 * RATE])
    assert level.stem_to_context_db == pytest.approx(ratio, abs=0.01)
    assert loudness(target) - loudness(context) == pytest.approx(ratio, abs=0.05)
    # Augmentation: drawn within +/- 6 dB around the gain that reaches -14 LUFS.
    gains = [level_pair(base, waves, -14.0, 6.0, rng).gain_db for _ in range(200)]
    assert min(gains) >= level.gain_db - 6.0
    assert max(gains) <= level.gain_db + 6.0
    assert np.std(gains) > 2.5
    # No context: levelled as if all the other stems were its context.
    alone = level_pair(Pair("s", 0, 2 * RATE, "bass", (), None, "bass", ()), waves, -14.0, 0.0, rng)
    others = waves["keys"][: 2 * RATE] + waves["pad"][: 2 * RATE]
    assert loudness(others * 10 ** (alone.gain_db / 20)) == pytest.approx(-14.0, abs=0.05)
    assert alone.stem_to_context_db is None


def test_levels_from_bundle_info() -> None:
    assert Levels.from_info({}) is None
    levels = Levels.from_info({"levels": Levels(-14.0, -6.5, 6.0).to_info()})
    assert levels is not None
    assert levels.stem_lufs == -20.5
    for bad in ({"levels": [1]}, {"levels": {"context_lufs": "loud"}}, {"levels": {"x": 1}}):
        with pytest.raises(ValueError, match="levels"):
            Levels.from_info(bad)


@pytest.fixture(scope="module")
def pipeline(bundle: Path) -> AccompanimentPipeline:
    return AccompanimentPipeline.from_pretrained(bundle)


def test_a_bundle_records_its_training_levels(pipeline: AccompanimentPipeline) -> None:
    levels = pipeline.levels
    assert levels is not None
    assert levels.context_lufs == -14.0
    assert levels.augment_db == 6.0
    assert levels.source == "prepare"
    assert -40.0 < levels.stem_to_context_db < 40.0


def test_the_same_context_at_any_level_gives_the_same_stem(
    pipeline: AccompanimentPipeline,
) -> None:
    """Contexts are heard at the trained loudness, so their level changes nothing but the
    level the stem is written at: the context's plus the bundle's ratio."""
    assert pipeline.levels is not None
    ratio = pipeline.levels.stem_to_context_db
    outs = {}
    for level in (-35.0, -30.0, -10.0, -5.0):
        context = chords(2.0, level)
        out = pipeline.generate(context, seed=3, steps=3)
        outs[level] = out
        assert np.abs(out.audio).max() <= OUTPUT_PEAK
        stem_level = loudness(out.audio[0])
        limited = out.settings["level"]["stems"][0]["peak_limited_db"]
        assert stem_level == pytest.approx(loudness(context) + ratio + limited, abs=0.1)
        if level <= -10.0:
            assert limited == 0.0  # within +-3 dB: exactly on target here
    # The same latents (the fit cannot depend on the level): equal up to float rounding.
    np.testing.assert_allclose(outs[-30.0].latents, outs[-10.0].latents, atol=2e-3)
    np.testing.assert_allclose(outs[-35.0].latents, outs[-5.0].latents, atol=2e-3)


def test_written_files_never_clip(bundle: Path, tmp_path: Path) -> None:
    context = tmp_path / "loud.wav"
    sf.write(context, chords(2.0, -6.0), RATE, subtype="FLOAT")  # peaks well above 1
    out, mix = tmp_path / "stem.wav", tmp_path / "mix.wav"
    argv = ["generate", "--bundle", str(bundle), "--context", str(context), "--out", str(out),
            "--mix", str(mix), "--steps", "2", "--seed", "0", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    for path in (out, mix):
        audio, _ = sf.read(path)
        assert np.abs(audio).max() < 1.0, path
    settings = json.loads(out.with_suffix(".json").read_text())["settings"]
    assert settings["level"]["target_lufs"] == pytest.approx(
        loudness(chords(2.0, -6.0)) + settings_ratio(bundle), abs=0.01
    )


def settings_ratio(bundle: Path) -> float:
    info = json.loads((bundle / "bundle.json").read_text())
    return float(info["levels"]["stem_to_context_db"])


def test_data_levels_surveys_a_data_set(tmp_path: Path) -> None:
    from helpers import synth_songs

    from openriff.pipeline.data.pairs import PairConfig as Pairs
    from openriff.pipeline.data.survey import survey_levels

    songs = synth_songs(tmp_path / "songs", 2)
    report = tmp_path / "levels.json"
    argv = ["data", "levels", "--data", str(songs), "--target", "bass", "--window-latents",
            "16", "--hop-seconds", "1", "--json", str(report)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(report.read_text())
    survey = survey_levels(songs, Pairs(window=16 * 4096, hop=RATE, targets=("bass",)))
    assert summary["songs"] == 2
    assert summary["pairs"] == len(survey.target_lufs) > 0
    assert summary["stem_to_context_db"]["median"] == pytest.approx(
        float(np.median(survey.stem_to_context_db)), abs=0.01
    )
    assert main([*argv[:-2], "--songs", "0"]) == 2  # refused in one line
    assert main(argv) == 2  # the report exists: refused without --overwrite


def test_the_codec_round_trip_is_the_same_at_any_level(pipeline: AccompanimentPipeline) -> None:
    """The round trip encodes at a training stem's loudness and gives the audio back at its
    own level: a quiet stem is not decoded worse than a loud one."""
    bass = sine(2.0, 55.0, 0.3)
    loud = pipeline.round_trip(bass, seed=3)
    quiet = pipeline.round_trip(bass * np.float32(0.01), seed=3)
    assert np.abs(loud).max() > 0
    np.testing.assert_allclose(quiet, 0.01 * loud, atol=1e-5 * float(np.abs(loud).max()))

"""A context read from its file as it is needed gives what the whole context gives."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openriff.pipeline.audio_io import (
    array_chunks,
    audio_writer,
    chunks_writer,
    load_input,
    mix,
    mixed,
)
from openriff.pipeline.cli import main
from openriff.pipeline.generation.pipeline import AccompanimentPipeline
from openriff.pipeline.levels import Meter, fit_output, limit, limited, loudness, peak
from openriff.pipeline.loudness import CHUNK
from openriff.pipeline.streamed import ContextFile

RATE = 48_000


def song(path: Path, seconds: float, rate: int = RATE, channels: int = 2) -> Path:
    """A chord over noise with a swell: loudness and peak that depend on every sample."""
    t = np.arange(round(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * hz * t) for hz in (110.0, 138.6, 164.8)) / 3
    wave = (0.3 + 0.2 * np.sin(2 * np.pi * 0.3 * t)) * tone
    noise = 0.02 * np.random.default_rng(channels).standard_normal((channels, t.size))
    sf.write(path, (wave + noise).T.astype(np.float32), rate, subtype="FLOAT")
    return path


@pytest.mark.parametrize(("rate", "channels"), [(RATE, 2), (44_100, 1), (RATE, 6)])
def test_a_surveyed_file_reads_as_the_whole_file(tmp_path: Path, rate: int, channels: int) -> None:
    path = song(tmp_path / "c.wav", 2.5 * CHUNK / RATE, rate, channels)
    whole = load_input(path, "context").numpy()  # resampled and folded down
    source = ContextFile.survey(path)
    assert (source.samples, source.channels) == (whole.shape[-1], whole.shape[0])
    assert source.loudness == loudness(whole)
    assert source.peak == peak(whole)
    chunks = list(source.chunks())
    assert [c.shape[-1] for c in chunks] == [CHUNK, CHUNK, whole.shape[-1] - 2 * CHUNK]
    np.testing.assert_array_equal(np.concatenate(chunks, axis=1), whole)
    # Cropped, and padded with silence on the same grid.
    longer = list(source.chunks(3 * CHUNK + 5))
    assert [c.shape[-1] for c in longer] == [CHUNK, CHUNK, CHUNK, 5]
    np.testing.assert_array_equal(np.concatenate(longer, 1)[:, : whole.shape[-1]], whole)
    assert not np.concatenate(longer, 1)[:, whole.shape[-1] :].any()
    np.testing.assert_array_equal(np.concatenate(list(source.chunks(1000)), 1), whole[:, :1000])
    # Read forwards in overlapping windows, with a gain, zeros past the end.
    read = source.reader(0.5)
    for lo, hi in ((0, 1000), (500, CHUNK + 10), (CHUNK, 2 * CHUNK + 3), (2 * CHUNK, 3 * CHUNK)):
        part = read(lo, hi)
        assert part.shape == (1, whole.shape[0], hi - lo)
        expected = np.zeros((whole.shape[0], hi - lo), np.float32)
        expected[:, : max(0, min(hi, whole.shape[-1]) - lo)] = whole[:, lo:hi]
        np.testing.assert_array_equal(part[0].numpy(), (torch.from_numpy(expected) * 0.5).numpy())
    with pytest.raises(ValueError, match="forwards only"):
        read(10, 20)


def test_a_bad_context_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^context .*gone\.wav: no such file"):
        ContextFile.survey(tmp_path / "gone.wav")
    sf.write(tmp_path / "low.wav", np.zeros(1000, np.float32), 4000)
    with pytest.raises(ValueError, match=r"^context .*low\.wav: sample rate 4000 Hz"):
        ContextFile.survey(tmp_path / "low.wav")


def test_loudness_of_chunks_does_not_depend_on_how_they_are_cut() -> None:
    wave = np.random.default_rng(0).standard_normal((2, 3 * RATE + 17)).astype(np.float32)
    wave *= np.linspace(0.01, 0.3, wave.shape[-1], dtype=np.float32)
    whole = loudness(wave)
    for size in (1, 999, 19_200, RATE):
        meter = Meter()
        for first in range(0, wave.shape[-1], size if size > 1 else wave.shape[-1]):
            meter.add(wave[:, first : first + size] if size > 1 else wave)
        assert meter.loudness() == whole
        assert meter.peak == float(np.abs(wave).max())
    short = Meter()  # under one 400 ms block: the RMS level
    short.add(wave[:, :1000])
    rms = np.sqrt(np.mean(np.square(wave[:, :1000], dtype=np.float64)))
    assert short.loudness() == pytest.approx(20 * np.log10(rms), abs=1e-9)


def test_the_limiter_written_back_in_place_equals_the_limiter() -> None:
    rng = np.random.default_rng(1)
    wave = (0.3 * rng.standard_normal((2, 2 * CHUNK + 999))).astype(np.float32)
    wave[:, CHUNK - 5 : CHUNK + 5] = 3.0  # a peak across a chunk boundary
    expected, reduction = limit(wave * np.float32(2.0), 0.9)
    inplace = wave.copy()
    least = 1.0
    for first, part, floor in limited(inplace, 2.0, 0.9):
        inplace[:, first : first + part.shape[-1]] = part  # before the next chunk is read
        least = min(least, floor)
    np.testing.assert_array_equal(inplace, expected)
    assert np.abs(inplace).max() <= 0.9 * (1 + 1e-6)  # float32 rounding at the ceiling
    assert -20 * np.log10(least) == pytest.approx(reduction)
    copied, report = fit_output(wave[None], -16.0)
    stems = wave[None].copy()
    levelled, same = fit_output(stems, -16.0, in_place=True)
    assert levelled is stems
    np.testing.assert_array_equal(stems, copied)
    assert same == report


def test_levelling_a_stem_in_place_takes_memory_that_does_not_grow_with_it() -> None:
    def most(seconds: int) -> tuple[int, int]:
        rng = np.random.default_rng(2)
        stem = (0.1 * rng.standard_normal((1, 2, seconds * RATE))).astype(np.float32)
        stem[..., RATE] = 1.0  # limited
        tracemalloc.start()
        _, (row,) = fit_output(stem, -10.0, in_place=True)
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert row["limited_db"] > 1.0
        return used, stem.nbytes

    short, _ = most(20)
    long, size = most(120)
    assert long < 1.2 * short, (long, short)  # chunks, not the stem
    assert long < size / 2, (long, size)


def test_mixing_chunks_equals_mixing_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    context = (0.7 * rng.standard_normal((2, 2 * CHUNK + 50))).astype(np.float32)
    stem = (0.5 * rng.standard_normal((1, 2 * CHUNK + 50))).astype(np.float32)
    total = context + np.repeat(stem, 2, axis=0)  # the mono stem on both sides
    gain = 0.99 / float(np.abs(total).max())
    expected = (total * gain).astype(np.float32)
    together, same = mixed([array_chunks(context), array_chunks(stem)], 2)
    assert same == gain
    np.testing.assert_array_equal(np.concatenate(list(together()), axis=1), expected)
    whole, whole_gain = mix([context, stem[:, :-7]])  # a shorter part: silence after it
    assert whole_gain < 1.0
    np.testing.assert_array_equal(whole[:, -7:], (context[:, -7:] * whole_gain).astype(np.float32))
    assert mix([np.zeros((2, 0), np.float32)])[0].shape == (2, 0)
    # Written a chunk at a time: the file written whole, byte for byte.
    for bits in ("16", "24", "float"):
        sf.write(tmp_path / f"whole-{bits}.wav", expected.T, RATE,
                 subtype={"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}[bits])  # fmt: skip
        chunks_writer(together, 2, RATE, bits)(str(tmp_path / f"chunks-{bits}.wav"))
        whole, chunked = tmp_path / f"whole-{bits}.wav", tmp_path / f"chunks-{bits}.wav"
        assert chunked.read_bytes() == whole.read_bytes()
    audio_writer(expected, RATE, "24")(str(tmp_path / "a.flac"))
    np.testing.assert_allclose(sf.read(tmp_path / "a.flac")[0].T, expected, atol=2**-22)


@pytest.fixture(scope="module")
def pipeline(bundle: Path) -> AccompanimentPipeline:
    return AccompanimentPipeline.from_pretrained(bundle)


@pytest.mark.parametrize("rate", [RATE, 44_100])
def test_a_context_read_as_needed_gives_the_same_stem(
    pipeline: AccompanimentPipeline, tmp_path: Path, rate: int
) -> None:
    path = song(tmp_path / "c.wav", 6.0, rate)
    kept = pipeline.generate(path, steps=2, seed=5)
    streamed = pipeline.generate(path, steps=2, seed=5, keep_context=False)
    assert streamed.context is None
    assert kept.context is not None
    assert streamed.context_file is not None
    assert streamed.context_file.path == path
    np.testing.assert_array_equal(streamed.latents, kept.latents)
    np.testing.assert_array_equal(streamed.audio, kept.audio)
    assert streamed.settings == kept.settings
    # An array context is always kept.
    wave = load_input(path, "context").numpy()
    assert pipeline.generate(wave, steps=2, seed=5, keep_context=False).context is not None


def test_the_cli_mixes_a_context_it_never_held(bundle: Path, tmp_path: Path) -> None:
    path = song(tmp_path / "c.wav", 3.0, 44_100)
    out = tmp_path / "o"
    argv = ["generate", "--bundle", str(bundle), "--context", str(path), "--steps", "2",
            "--seed", "1", "--quiet", "--bits", "float", "--out", str(out / "stem.wav"),
            "--mix", str(out / "mix.wav")]  # fmt: skip
    assert main(argv) == 0
    stem = sf.read(out / "stem.wav", always_2d=True)[0].T
    expected, _ = mix([load_input(path, "context").numpy(), stem.astype(np.float32)])
    np.testing.assert_allclose(sf.read(out / "mix.wav", always_2d=True)[0].T, expected, atol=1e-7)


@pytest.mark.parametrize("samples", [1, 100, 2400])  # one sample, 2 ms, 0.05 s
def test_a_context_of_a_few_samples_gives_a_stem_as_long(
    pipeline: AccompanimentPipeline, tmp_path: Path, samples: int
) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, (0.3 * np.sin(np.arange(samples) / 10)).astype(np.float32), RATE)
    kept = pipeline.generate(path, steps=2, seed=2)
    streamed = pipeline.generate(path, steps=2, seed=2, keep_context=False)
    assert kept.audio.shape[-1] == samples
    assert np.isfinite(kept.audio).all()
    assert np.abs(kept.audio).max() <= 10 ** (-0.1 / 20)
    np.testing.assert_array_equal(streamed.audio, kept.audio)

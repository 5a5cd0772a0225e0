"""The context chromagram: pitch classes, alignment with latent frames, silence, bad input,
and a bundle prepared with it generating in every mode."""

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import prepare_args, random_codec, synth_songs

from openriff.pipeline.chroma import append_context_chroma, context_chroma, fold_matrix
from openriff.pipeline.cli import main
from openriff.pipeline.generation.pipeline import AccompanimentPipeline

RATE = 48_000
HOP = 4096


def tones(seconds: float, *midi: int, amplitude: float = 0.2) -> torch.Tensor:
    t = torch.arange(round(seconds * RATE), dtype=torch.float64) / RATE
    freqs = [440.0 * 2 ** ((m - 69) / 12) for m in midi]
    return (amplitude * sum(torch.sin(2 * torch.pi * f * t) for f in freqs)).float()


def test_fold_matrix_sends_each_band_bin_to_its_pitch_class() -> None:
    fold = fold_matrix(RATE, 8192, 65.0, 4000.0)
    freqs = np.arange(4097) * RATE / 8192
    assert fold.shape == (4097, 12)
    inside = (freqs >= 65.0) & (freqs <= 4000.0)
    np.testing.assert_array_equal(fold.sum(1), inside.astype(float))
    a4 = int(np.argmin(np.abs(freqs - 440.0)))
    assert fold[a4].argmax() == 9  # A
    c5 = int(np.argmin(np.abs(freqs - 523.25)))
    assert fold[c5].argmax() == 0  # C


def test_a_triad_lights_its_three_classes() -> None:
    chroma = context_chroma(tones(2.0, 60, 64, 67), HOP, 20)  # C major: C4 E4 G4
    assert chroma.shape == (12, 20)
    inner = chroma[:, 2:-2]
    top3 = {int(i) for i in inner.mean(1).topk(3).indices}
    assert top3 == {0, 4, 7}
    assert torch.allclose(inner.amax(0), torch.ones(inner.shape[1]))
    assert float(inner[[1, 3, 6, 8, 10]].max()) < 0.2
    # Loudness does not matter, and stereo is averaged.
    quiet = context_chroma(0.1 * tones(2.0, 60, 64, 67), HOP, 20)
    torch.testing.assert_close(quiet, chroma, atol=1e-4, rtol=1e-4)
    both = torch.stack([tones(2.0, 60, 64, 67), tones(2.0, 60, 64, 67)])
    torch.testing.assert_close(context_chroma(both, HOP, 20), chroma)


def test_columns_are_centred_on_latent_frames() -> None:
    switch = 10 * HOP  # A4 until latent frame 10 starts, C#5 after
    wave = torch.cat([tones(switch / RATE, 69), tones(1.0, 73)])
    chroma = context_chroma(wave, HOP, 16)
    top = chroma.argmax(0).tolist()
    # Column k is centred on (k + 0.5) * HOP: column 9 is mostly before the switch,
    # column 10 mostly after it.
    assert top[:10] == [9] * 10
    assert top[10:] == [1] * 6
    # A hop that is not a whole number of samples (music2latent) works the same way.
    odd = context_chroma(wave, HOP + 0.37, 16)
    assert odd.shape == (12, 16)
    assert odd.argmax(0).tolist()[:9] == [9] * 9


def test_silence_and_audio_past_the_end_give_zero_columns() -> None:
    wave = torch.cat([torch.zeros(4 * HOP), tones(6 * HOP / RATE, 57)])
    chroma = context_chroma(wave, HOP, 14)  # the audio ends after frame 9
    assert float(chroma[:, :3].abs().max()) == 0.0  # windows that see only silence
    assert float(chroma[:, 12:].abs().max()) == 0.0  # windows past the end
    assert chroma[:, 5:9].argmax(0).tolist() == [9] * 4
    below_floor = context_chroma(tones(1.0, 57, amplitude=1e-4), HOP, 8)
    assert float(below_floor.abs().max()) == 0.0
    assert context_chroma(tones(0.1, 57), HOP, 0).shape == (12, 0)


def test_bad_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        context_chroma(torch.full((RATE,), float("nan")), HOP, 4)
    with pytest.raises(ValueError, match=r"\[S\] or \[C, S\]"):
        context_chroma(torch.zeros(0), HOP, 4)
    with pytest.raises(ValueError, match="hop"):
        context_chroma(tones(0.5, 57), 0.0, 4)
    with pytest.raises(ValueError, match="one mono context"):
        append_context_chroma(torch.zeros(2, 64, 4), torch.zeros(3, 4 * HOP), HOP)


def test_a_bundle_prepared_with_chroma_generates_in_every_mode(
    clap_checkpoint: Path, tmp_path: Path
) -> None:
    songs, prepared = synth_songs(tmp_path / "songs", 2), tmp_path / "prepared"
    codec = random_codec(tmp_path / "codec")
    clap = ["--clap", str(clap_checkpoint), "--amodel", "HTSAT-tiny"]
    assert main(prepare_args(songs, prepared, *clap, "--context-chroma", codec=codec)) == 0
    ldm = ["train", "ldm", "--data", str(prepared), "--out", str(tmp_path / "ldm")]
    assert main([*ldm, "--steps", "2", "--batch-size", "2", "--quiet"]) == 0
    pipeline = AccompanimentPipeline.from_pretrained(tmp_path / "ldm" / "bundle")
    assert pipeline.context_chroma
    context = tones(2.5, 60, 64, 67) + tones(2.5, 48)
    encoded = pipeline.encode_context(torch.stack([context, context]))
    frames = pipeline.frames(len(context))
    assert encoded.shape == (1, 64 + 12, frames)
    torch.testing.assert_close(encoded[0, 64:], context_chroma(context, HOP, frames))
    wave = context.numpy()
    assert pipeline.generate(duration=0.5, steps=2, seed=0).audio.shape[-1] == RATE // 2
    assert pipeline.generate(wave, steps=2, seed=0).audio.shape[-1] == len(wave)
    assert pipeline.inpaint(wave, 0.2, 0.5, wave, steps=2, seed=0).audio.shape[-1] == len(wave)
    assert pipeline.loop(1, 120.0, wave, steps=2, seed=0).audio.shape[-1] == 2 * RATE
    # Whole-song mode: the second part's context is the first part's stem over the context.
    song = pipeline.song([wave, wave], wave, steps=2, seed=0).audio
    assert song.shape[0] == 2
    assert song.shape[-1] == len(wave)

import math

import pytest
import torch

from openriff.cae.spectral import (
    SpectrogramConfig,
    compress,
    decompress,
    from_spectrogram,
    griffin_lim,
    instantaneous_frequency,
    magnitude,
    overlap_add,
    to_spectrogram,
)

CONFIG = SpectrogramConfig()


def test_default_representation_is_the_papers() -> None:
    assert (CONFIG.n_fft, CONFIG.hop_length, CONFIG.bins) == (2048, 512, 1024)
    assert (CONFIG.alpha, CONFIG.beta) == (0.65, 0.34)


@pytest.mark.parametrize(("size", "hop", "frames"), [(2048, 512, 37), (16, 4, 1), (10, 3, 6)])
def test_overlap_add_equals_fold(size: int, hop: int, frames: int, device: torch.device) -> None:
    # The shifted-sum path (hop divides the frame) and the fold path against fold itself.
    x = torch.randn(3, size, frames, device=device)
    total = (frames - 1) * hop + size
    reference = torch.nn.functional.fold(
        x, output_size=(1, total), kernel_size=(1, size), stride=(1, hop)
    ).reshape(3, total)
    torch.testing.assert_close(overlap_add(x, hop), reference)


@pytest.mark.parametrize(("batch", "channels", "hops"), [(1, 1, 1), (2, 1, 8), (3, 2, 37)])
def test_shape(batch: int, channels: int, hops: int, device: torch.device) -> None:
    wave = torch.randn(batch, channels, hops * 512, device=device)
    spec = to_spectrogram(wave, CONFIG)
    assert spec.shape == (batch, 2 * channels, 1024, hops)


def signals(device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(48 * 512) / 48_000
    return {
        "noise": (torch.rand(2, 2, 48 * 512, generator=g) * 2 - 1).to(device),
        "sines": torch.stack([torch.sin(2 * math.pi * f * t) for f in (55.0, 440.0, 12_345.0)])[
            :, None
        ].to(device),
        # The Nyquist bin travels in the DC bin's imaginary part: it must survive too.
        "nyquist": (torch.ones(1, 1, 48 * 512) * torch.tensor([1.0, -1.0]).repeat(24 * 512)).to(
            device
        ),
        "dc": torch.full((1, 1, 48 * 512), 0.5, device=device),
        "silence": torch.zeros(1, 1, 48 * 512, device=device),
        "clipped": (torch.randn(1, 1, 48 * 512, generator=g) * 5).clamp(-1, 1).to(device),
    }


@pytest.mark.parametrize("name", ["noise", "sines", "nyquist", "dc", "silence", "clipped"])
def test_round_trip_within_1e_4(name: str, device: torch.device) -> None:
    wave = signals(device)[name]
    back = from_spectrogram(to_spectrogram(wave, CONFIG), CONFIG)
    assert back.shape == wave.shape
    assert (back - wave).abs().max().item() < 1e-4


def test_compression_is_the_power_law_and_inverts() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.complex(torch.randn(1000, generator=g), torch.randn(1000, generator=g)) * 10
    y = compress(x, CONFIG)
    torch.testing.assert_close(y.abs(), 0.34 * x.abs() ** 0.65, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.angle(y), torch.angle(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(decompress(y, CONFIG), x, rtol=1e-5, atol=1e-5)


def test_rejects_lengths_off_the_hop_grid_and_bad_configs() -> None:
    with pytest.raises(ValueError, match="multiple of hop"):
        to_spectrogram(torch.zeros(1, 1, 1000), CONFIG)
    with pytest.raises(ValueError, match="multiple of hop_length"):
        SpectrogramConfig(n_fft=2000, hop_length=512)
    with pytest.raises(ValueError, match="alpha"):
        SpectrogramConfig(alpha=0.0)


def bass_line() -> torch.Tensor:
    """Half a second of G#2 then E2 (103.8 and 82.4 Hz, between STFT bin centres)."""
    t = torch.arange(48 * 512) / 48_000
    f0 = torch.where(t < t[-1] / 2, 103.83, 82.41)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / 48_000
    return (0.3 * sum(torch.sin(k * phase) / k for k in range(1, 5)))[None, None]


def peak_hz(wave: torch.Tensor) -> float:
    """Frequency of the strongest 30-300 Hz component (zero-padded FFT, 0.2 Hz bins)."""
    n = 1 << 18
    spectrum = torch.fft.rfft(wave * torch.hann_window(wave.numel()), n).abs()
    freqs = torch.fft.rfftfreq(n, 1 / 48_000)
    band = (freqs > 30) & (freqs < 300)
    return float(freqs[band][spectrum[band].argmax()])


def test_griffin_lim_recovers_a_bass_line_from_its_magnitudes() -> None:
    wave = bass_line()
    target = magnitude(to_spectrogram(wave, CONFIG))

    def convergence(iterations: int, seed: int = 0) -> tuple[float, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        out = griffin_lim(target, CONFIG, iterations=iterations, generator=g)
        got = magnitude(to_spectrogram(out, CONFIG))
        return ((got - target).norm() / target.norm()).item(), out

    start, _ = convergence(0)
    error, out = convergence(64)
    assert out.shape == wave.shape
    # The projections did the work.
    assert start > 0.3
    assert error < 0.08
    # Each note comes back at its own pitch (within 30 cents), not at a bin centre.
    half = wave.shape[-1] // 2
    for lo, hi, hz in ((2048, half - 2048, 103.83), (half + 2048, -2048, 82.41)):
        assert abs(1200 * math.log2(peak_hz(out[0, 0, lo:hi]) / hz)) < 30
    # Reproducible for a seed; another seed starts from other phases.
    assert torch.equal(convergence(64)[1], out)
    assert not torch.equal(convergence(64, seed=1)[1], out)


def test_griffin_lim_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="expected magnitudes"):
        griffin_lim(torch.ones(1, 1, 512, 4), CONFIG)
    with pytest.raises(ValueError, match="iterations"):
        griffin_lim(torch.ones(1, 1, 1024, 4), CONFIG, iterations=-1)


def fine_hz(
    wave: torch.Tensor, rate: int = 48_000, band: tuple[float, float] = (25.0, 300.0)
) -> float:
    """Frequency of the strongest partial in ``band`` (Hz), to a hundredth of a cent for a
    tone (zero-padded FFT, parabola through the log magnitudes around the peak)."""
    x = wave.double() * torch.hann_window(wave.numel(), dtype=torch.float64)
    n = 1 << 21
    spectrum = torch.fft.rfft(x, n).abs()
    freqs = torch.fft.rfftfreq(n, 1 / rate)
    inside = torch.nonzero((freqs > band[0]) & (freqs < band[1])).flatten()
    k = int(inside[0]) + int(spectrum[inside].argmax())
    a, b, c = torch.log(spectrum[k - 1 : k + 2])
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / n)


def test_phase_locked_start_keeps_bass_notes_in_tune() -> None:
    """Magnitude-only decoding from random phases detunes bass notes by tens of cents at
    this resolution (23 Hz bins); from phase-locked phases they stay within a few."""
    rate = 48_000
    t = torch.arange(192 * 512, dtype=torch.float64) / rate  # 2.05 s
    deviations: dict[str, list[float]] = {"random": [], "locked": []}
    for midi in (33, 36, 40, 45, 52):  # A1 to E3: one bin spans 3 to 7 semitones
        hz = 440.0 * 2 ** ((midi - 69) / 12)
        saw = (0.3 * 2 * ((t * hz) % 1 - 0.5)).float()[None, None]
        target = magnitude(to_spectrogram(saw, CONFIG))
        for init in deviations:
            g = torch.Generator().manual_seed(0)
            out = griffin_lim(target, CONFIG, iterations=64, generator=g, init=init)
            middle = out[0, 0, rate // 4 : -rate // 4]
            deviations[init].append(abs(1200 * math.log2(fine_hz(middle) / hz)))
    # Measured: within 0.2 cents from locked phases, 9 to 73 cents from random ones.
    assert max(deviations["locked"]) < 2.0
    assert sorted(deviations["random"])[2] > 8.0  # the median, for contrast
    with pytest.raises(ValueError, match="init"):
        griffin_lim(target, CONFIG, init="zeros")


def test_instantaneous_frequency_reads_a_partial_off_every_bin_of_its_lobe() -> None:
    rate, hz = 48_000, 61.735  # B1: 2.634 bins, between bin centres
    t = torch.arange(64 * 512, dtype=torch.float64) / rate
    wave = torch.sin(2 * math.pi * hz * t).float()[None, None]
    offsets = instantaneous_frequency(to_spectrogram(wave, CONFIG), CONFIG)
    assert offsets.shape == (1, 1, CONFIG.bins, 64)
    true_bins = hz * CONFIG.n_fft / rate
    # The two bins next to the partial read it to 5/1000 of a bin (3 cents here), the
    # lobe's edges (1.6 bins away, 20 dB down) to a tenth; what jitters them is the
    # negative-frequency image of so low a tone, and it averages out over frames.
    for k, tolerance in ((1, 0.1), (2, 5e-3), (3, 5e-3), (4, 0.1)):
        got = offsets[0, 0, k, 4:-4] + k
        assert torch.allclose(got, torch.full_like(got, true_bins), atol=tolerance), k
        assert abs(float(got.mean()) - true_bins) < tolerance / 5, k
    # Frame 0 copies frame 1; bin 0 (DC, holding Nyquist) is 0.
    assert torch.equal(offsets[..., 0], offsets[..., 1])
    assert torch.all(offsets[:, :, 0] == 0)
    # Bounded: a phase advance is only known modulo 2 pi, i.e. 4 bins at hop n_fft / 4.
    noise = torch.randn(1, 1, 16 * 512, generator=torch.Generator().manual_seed(0))
    assert instantaneous_frequency(to_spectrogram(noise, CONFIG), CONFIG).abs().max() <= 2.0


def test_given_frequencies_keep_partials_in_tune_under_blurred_magnitudes() -> None:
    """A decoder's magnitudes are never exact; the neighbouring bins' ratios, which the
    magnitude-only start reads frequencies from, then put a bass note off pitch. With the
    frequencies given and no Griffin-Lim iteration to pull partials back, it stays in tune."""
    rate = 48_000
    t = torch.arange(192 * 512, dtype=torch.float64) / rate  # 2 s
    blur = torch.tensor([0.15, 0.7, 0.15]).view(1, 1, 3, 1)  # smear along frequency
    errors: dict[str, list[float]] = {"magnitudes": [], "given": []}
    for midi in (33, 35, 38):
        hz = 440.0 * 2 ** ((midi - 69) / 12)
        saw = (0.3 * 2 * ((t * hz) % 1 - 0.5)).float()[None, None]
        spec = to_spectrogram(saw, CONFIG)
        blurred = torch.nn.functional.conv2d(magnitude(spec), blur, padding=(1, 0))
        blurred = blurred * (
            1 + 0.2 * torch.rand(blurred.shape, generator=torch.Generator().manual_seed(midi))
        )
        for name, frequencies, iterations in (
            ("magnitudes", None, 64),
            ("given", instantaneous_frequency(spec, CONFIG), 0),
        ):
            g = torch.Generator().manual_seed(0)
            out = griffin_lim(
                blurred, CONFIG, iterations=iterations, generator=g, init="locked",
                frequencies=frequencies,
            )  # fmt: skip
            middle = out[0, 0, rate // 4 : -rate // 4]
            cents = 1200 * math.log2(fine_hz(middle) / hz)
            # The strongest partial may be the second harmonic: octaves are in tune.
            errors[name].append(abs((cents + 600) % 1200 - 600))
    # Measured: 2.3, 0.2 and 0.002 cents given, 56, 8.6 and 57 cents from the magnitudes.
    assert max(errors["given"]) < 3.0
    assert sorted(errors["magnitudes"])[1] > 10 * max(errors["given"])


def test_finer_bins_keep_partials_in_tune_under_decoder_errors() -> None:
    """Magnitude decoding reads each partial's frequency off its neighbouring bins' ratios,
    which a decoder's errors disturb; the disturbance is a fraction of a bin, so the 4x
    finer bins of diffariff-tiny-magnitude-8k leave a bass note 4x closer to its pitch."""
    from openriff.cae import PRESETS, ConvCAEConfig

    _, preset = PRESETS["diffariff-tiny-magnitude-8k"]
    assert isinstance(preset, ConvCAEConfig)
    fine = preset.spectrogram
    assert fine.n_fft == 8192
    rate = 48_000
    t = torch.arange(48 * 2048, dtype=torch.float64) / rate  # 2 s
    cents: dict[int, list[float]] = {CONFIG.n_fft: [], fine.n_fft: []}
    for config in (CONFIG, fine):
        for midi in (33, 36, 40, 45, 52):  # A1 to E3
            hz = 440.0 * 2 ** ((midi - 69) / 12)
            saw = (0.3 * 2 * ((t * hz) % 1 - 0.5)).float()[None, None]
            mags = magnitude(to_spectrogram(saw, config))
            # A decoder's log-magnitude error (0.5 rms for the shipped codec on bass stems),
            # correlated over 3 bins and 0.1 s as a decoder's are.
            noise = torch.randn(mags.shape, generator=torch.Generator().manual_seed(midi))
            frames = max(1, round(0.1 * rate / config.hop_length))
            noise = torch.nn.functional.avg_pool2d(
                noise, (3, frames), stride=1, padding=(1, frames // 2), count_include_pad=False
            )[..., : mags.shape[-1]]
            noisy = mags * torch.exp(0.5 * noise / noise.std())
            g = torch.Generator().manual_seed(0)
            out = griffin_lim(noisy, config, generator=g, init="locked")[0, 0]
            middle = out[rate // 4 : -rate // 4]
            for harmonic in (1, 2, 3):
                semitone = (harmonic * hz * 2 ** (-1 / 12), harmonic * hz * 2 ** (1 / 12))
                got = fine_hz(middle, band=semitone)
                cents[config.n_fft].append(abs(1200 * math.log2(got / (harmonic * hz))))
    # Measured (median over 5 notes x 3 partials): 43 cents at n_fft 2048, 5 at 8192.
    coarse, finer = (float(torch.tensor(c).median()) for c in cents.values())
    assert finer < 8.0
    assert coarse > 4 * finer

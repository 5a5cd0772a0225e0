"""Named CAE configurations, as data: ``PRESETS[name] -> (model kind, config)``.

``diffariff`` is sized like the Diff-A-Riff CAE (about 58 M parameters, mono, 64x
compression); ``stereo`` is the Music2Latent2-style transformer (stereo, 128x
compression). The ``-tiny`` presets have the same structure and train in minutes on a CPU;
their training settings suit runs of a few hundred steps: half of the examples at
sigma_max and the consistency term ramped in over the first half of training.
"""

from __future__ import annotations

from dataclasses import replace

from openriff.cae.consistency import ConsistencyConfig
from openriff.cae.conv import ConvCAEConfig
from openriff.cae.spectral import SpectrogramConfig
from openriff.cae.transformer import TransformerCAEConfig

# Short CPU runs: one-step reconstruction and latent use first, then consistency.
SHORT_RUN = ConsistencyConfig(sigma_max_fraction=0.5, consistency_warmup=0.5, feature_gradient=0.1)

TINY_CONV = ConvCAEConfig(
    base_channels=8,
    multipliers=(1, 2, 2, 4, 4),
    unet_blocks=(1, 1, 1, 1, 1),
    encoder_blocks=(1, 1, 1, 1, 1),
    attention=(False, False, False, False, True),
    heads=2,
    bottleneck_channels=64,
    bottleneck_blocks=2,
    emb_dim=64,
    chunk_latents=16,
    overlap_latents=2,
    consistency=SHORT_RUN,
)

# diffariff-tiny for tonal stems: the preview term also weighs the loud bins, the harmonics
# that carry pitch (ConsistencyConfig), and decoding goes through that preview (codec
# module docstring): within a CPU budget the tiny consistency model never learns to turn a
# bass note's phases.
TINY_TONAL = replace(
    TINY_CONV,
    consistency=replace(SHORT_RUN, preview_convergence_weight=1.0),
    decoding="magnitude",
)

PRESETS: dict[str, tuple[str, object]] = {
    "diffariff": ("conv", ConvCAEConfig(multipliers=(1, 2, 4, 4, 5))),
    "diffariff-tiny": ("conv", TINY_CONV),
    "diffariff-tiny-tonal": ("conv", TINY_TONAL),
    # diffariff-tiny-tonal without the consistency U-Net, which magnitude decoding never
    # uses: the autoencoder learns from the preview terms alone, 2.5x the steps per second
    # on a CPU (ConvCAEConfig.consistency_model); the codec of OpenRiff's default bass model.
    "diffariff-tiny-magnitude": ("conv", replace(TINY_TONAL, consistency_model=False)),
    # diffariff-tiny-magnitude with a frequency head (ConvCAEConfig.frequency_head):
    # decoding gives the partials the frequencies it reads off the latents. Given the true
    # frequencies, the shipped codec's magnitudes decode bass stems in tune (median YIN
    # deviation 0.004-0.12 semitone against 0.18-0.31 from its magnitudes alone); the head
    # has yet to learn them: fine-tuned from that codec on a CPU for 1000 steps, frozen
    # encoder or not, its error at the partials stayed at chance (0.22-0.29 bins).
    "diffariff-tiny-frequency": (
        "conv",
        replace(TINY_TONAL, consistency_model=False, frequency_head=True),
    ),
    # diffariff-tiny-magnitude over a 4x finer frequency grid (5.9 Hz bins, 171 ms Hann
    # window, 43 ms hop; the latent rate and the compute per step are unchanged; beta keeps
    # a partial's compressed magnitude where it was at n_fft 2048). Griffin-Lim reads each
    # partial's frequency off its bins' magnitudes, and a decoder's errors move it by a
    # fraction of a bin: with the shipped codec's error size (log-magnitude noise of 0.5,
    # correlated over 0.1 s) exact magnitudes of 4 synthetic bass stems decode 0.13
    # semitone off at n_fft 2048 and 0.04-0.05 at 8192, with onsets still within 50 ms
    # (0.98 of them); test_spectral checks the same on saw notes (43 cents against 5).
    # Trained like the default model's codec (4000 CPU steps, same songs), its bass
    # round trip is 0.12-0.15 semitone off on 4 held-out synthetic songs (0.18-0.30 for
    # diffariff-tiny-magnitude) and 0.11-0.31 on 4 rendered pieces (0.21-0.29): better,
    # not yet in tune; its fundamentals sit 0.11-0.19 semitone from the true ones (0.29-0.67).
    # 2000 and 3000 steps more: medians of 0.097 and 0.108 (synthetic), 0.15 and 0.18
    # (rendered): levelled off.
    "diffariff-tiny-magnitude-8k": (
        "conv",
        replace(
            TINY_TONAL,
            consistency_model=False,
            spectrogram=SpectrogramConfig(n_fft=8192, hop_length=2048, beta=0.14),
            factors=((4, 1), (4, 2), (4, 1), (8, 1)),
        ),
    ),
    "stereo": ("transformer", TransformerCAEConfig()),
    "stereo-tiny": (
        "transformer",
        TransformerCAEConfig(
            width=64,
            heads=2,
            encoder_layers=2,
            decoder_layers=1,
            denoiser_layers=2,
            block_latents=2,
            chunk_latents=16,
            overlap_latents=2,
            consistency=SHORT_RUN,
        ),
    ),
}

"""The Diff-A-Riff consistency autoencoder (``conv``; Music2Latent architecture family).

Diff-A-Riff 4.2.1: a 2-D convolutional residual encoder reads the compressed complex
spectrogram ``[B, 2C, F, T_frames]``, downsamples frequency and time level by level,
collapses the remaining frequency axis into channels and emits 64-channel latents in
(-1, 1), one per ``frames_per_latent`` STFT frames (4096 samples: ~11.7 Hz at 48 kHz, 64x
compression of mono audio). A decoder turns the latents back into a pyramid of 2-D
feature maps, one per resolution, which condition a consistency model: a U-Net over the
spectrogram that maps noise at ``sigma_max`` to the clean spectrogram in one step, or
refines it in more.

Resolution levels (default): ``(F, T) = (1024, 8n) -> (512, 4n) -> (128, 2n) -> (32, n) ->
(8, n)`` for ``n`` latent frames, with the (frequency, time) factors in
``ConvCAEConfig.factors``. The encoder, the decoder pyramid and the U-Net share them.
"""

from __future__ import annotations

from torch import Tensor, nn

from openriff.cae.codec import SpectrogramCodec
from openriff.cae.consistency import consistency_loss, scalings
from openriff.cae.consistency import sample as consistency_sample
from openriff.cae.conv_networks import ConsistencyUNet, ConvCAEConfig, Decoder, Encoder
from openriff.cae.layers import Attention, ResBlock
from openriff.cae.noise import Noise

__all__ = ["ConsistencyUNet", "ConvCAE", "ConvCAEConfig", "Decoder", "Encoder"]


class ConvCAE(SpectrogramCodec):
    """The Diff-A-Riff consistency autoencoder; a :class:`LatentCodec`.

    Args:
        config: hyper-parameters (see :mod:`openriff.cae.presets` for named ones).
    """

    def __init__(self, config: ConvCAEConfig) -> None:
        super().__init__(config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.unet = ConsistencyUNet(config) if config.consistency_model else None
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """All zero-initialisation of the model, in one place.

        Residual branches end at zero (each block starts as the identity), attention
        outputs and FiLM start at zero, the frequency gains start at 1 and the U-Net's
        output starts at zero, so the initial consistency function is ``c_skip * x``.
        """
        for module in self.modules():
            if isinstance(module, ResBlock):
                nn.init.zeros_(module.conv2.weight)  # type: ignore[arg-type]
                nn.init.zeros_(module.conv2.bias)  # type: ignore[arg-type]
                if module.film is not None:
                    nn.init.zeros_(module.film.weight)
                    nn.init.zeros_(module.film.bias)
            elif isinstance(module, Attention):
                nn.init.zeros_(module.proj.weight)
                nn.init.zeros_(module.proj.bias)
        if self.unet is None:
            return
        for linear in (self.unet.gain_in, self.unet.gain_out):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
        nn.init.zeros_(self.unet.out.weight)  # type: ignore[arg-type]
        nn.init.zeros_(self.unet.out.bias)  # type: ignore[arg-type]

    def encode_spectrogram(self, spec: Tensor) -> Tensor:
        """``[B, 2C, F, 8n]`` -> latents ``[B, D, n]``."""
        latents: Tensor = self.encoder(spec)
        return latents

    def denoise(self, noisy: Tensor, sigma: Tensor, pyramid: list[Tensor]) -> Tensor:
        """The consistency function ``f(x_sigma, sigma) = c_skip x + c_out F(c_in x)``.

        Args:
            noisy: ``[B, 2C, F, T]`` spectrogram plus noise of level ``sigma``.
            sigma: ``[B]`` noise levels.
            pyramid: decoder features of the latents (:meth:`features`).
        """
        if self.unet is None:
            raise RuntimeError(
                "this codec has no consistency model (consistency_model=False); "
                "decode with decoding='magnitude'"
            )
        c_skip, c_out, c_in, c_noise = scalings(sigma, self.config.consistency)
        view = (-1, 1, 1, 1)
        out = self.unet(noisy * c_in.view(view), c_noise, pyramid)
        return c_skip.view(view) * noisy + c_out.view(view) * out

    def features(self, latents: Tensor) -> list[Tensor]:
        """Decoder feature pyramid of ``latents`` ``[B, D, n]``, finest level first."""
        pyramid: list[Tensor] = self.decoder(latents)
        return pyramid

    def preview_spectrogram(self, latents: Tensor) -> Tensor:
        """Latents ``[B, D, n]`` -> log compressed magnitudes ``[B, C, F, 8n]``."""
        out: Tensor = self.decoder.preview(self.features(latents))
        return out

    def previews(self, latents: Tensor) -> tuple[Tensor, Tensor | None]:
        """Latents ``[B, D, n]`` -> log magnitudes and bin offsets (or None), ``[B, C, F, 8n]``."""
        features = self.features(latents)
        return self.decoder.preview(features), self.decoder.frequencies(features)

    def decode_spectrogram(self, latents: Tensor, *, steps: int, noise: Noise) -> Tensor:
        """Latents ``[B, D, n]`` -> spectrogram ``[B, 2C, F, 8n]`` in ``steps`` steps."""
        pyramid = self.features(latents)
        shape = (
            latents.shape[0],
            2 * self.channels,
            self.spectrogram.bins,
            latents.shape[-1] * self.frames_per_latent,
        )
        return consistency_sample(
            lambda x, sigma: self.denoise(x, sigma, pyramid),
            shape,
            steps,
            self.config.consistency,
            noise=noise,
            device=latents.device,
            dtype=latents.dtype,
        )

    def forward(
        self,
        spec: Tensor,
        noise: Tensor,
        sigma: Tensor,
        sigma_teacher: Tensor,
        uniform: Tensor,
        progress: float = 1.0,
    ) -> Tensor:
        """Training loss of a batch of clean spectrograms (scalar).

        The whole autoencoder trains end to end through this loss: gradients reach the
        encoder and decoder through the student's conditioning. The terms are those of
        :meth:`~openriff.cae.codec.SpectrogramCodec.objective`; a model without a
        consistency model has the preview terms only (and ignores the noise arguments).

        Args:
            spec: clean spectrograms ``[B, 2C, F, 8n]``.
            noise: standard normal noise like ``spec``.
            sigma: ``[B]`` student noise levels.
            sigma_teacher: ``[B]`` teacher noise levels.
            uniform: ``[B]`` uniform draws (unused by this model).
            progress: share of training done (consistency-term ramp).
        """
        features = self.features(self.encode_spectrogram(spec))
        preview = self.decoder.preview(features)
        frequencies = self.decoder.frequencies(features)
        if self.unet is None:
            return self.preview_loss(preview, spec, frequencies).mean()
        pyramid = [self.conditioning(level) for level in features]
        consistency = self.config.consistency
        ct, student = consistency_loss(
            lambda x, s: self.denoise(x, s, pyramid), spec, noise, sigma, sigma_teacher, consistency
        )
        return self.objective(ct, student, spec, progress, preview, frequencies)

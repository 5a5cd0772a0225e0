"""Reconstruction quality of a codec: the multi-resolution STFT distance."""

from __future__ import annotations

import torch
from torch import Tensor

# (n_fft, hop) pairs, from fine time to fine frequency resolution.
RESOLUTIONS: tuple[tuple[int, int], ...] = ((2048, 512), (1024, 256), (512, 128), (256, 64))


def multiresolution_stft_distance(
    estimate: Tensor, target: Tensor, resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS
) -> Tensor:
    """Mean over resolutions of spectral convergence plus log-magnitude L1, per item.

    Args:
        estimate: audio ``[B, C, S]``.
        target: audio ``[B, C, S]``.
        resolutions: ``(n_fft, hop)`` pairs.

    Returns:
        ``[B]`` distances (0 for identical audio).
    """
    if estimate.shape != target.shape:
        raise ValueError(f"shapes differ: {list(estimate.shape)} vs {list(target.shape)}")
    batch = estimate.shape[0]
    a = estimate.reshape(-1, estimate.shape[-1]).float()
    b = target.reshape(-1, target.shape[-1]).float()
    total = torch.zeros(batch, device=estimate.device)
    for n_fft, hop in resolutions:
        window = torch.hann_window(n_fft, device=a.device)
        mag_a = torch.stft(a, n_fft, hop, window=window, return_complex=True).abs()
        mag_b = torch.stft(b, n_fft, hop, window=window, return_complex=True).abs()
        mag_a = mag_a.reshape(batch, -1)
        mag_b = mag_b.reshape(batch, -1)
        convergence = (mag_a - mag_b).norm(dim=1) / mag_b.norm(dim=1).clamp_min(1e-7)
        log_l1 = (mag_a.clamp_min(1e-5).log() - mag_b.clamp_min(1e-5).log()).abs().mean(dim=1)
        total = total + convergence + log_l1
    return total / len(resolutions)

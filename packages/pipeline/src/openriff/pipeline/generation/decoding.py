"""Latents of every output channel -> one recording's audio, whatever the codec."""

from __future__ import annotations

import torch
from torch import Tensor

from openriff.cae.contract import ChannelDecoder
from openriff.latent_diffusion.precision import precision_scope
from openriff.pipeline.contracts import LatentCodec
from openriff.pipeline.generation.progress import Progress, Report


def decode_latents(
    codec: LatentCodec,
    channels: list[Tensor],
    length: int,
    seed: int,
    *,
    device: torch.device,
    precision: str = "fp32",
    progress: bool = False,
    report: Report | None = None,
) -> Tensor:
    """Latents per channel (``[B, D, T]`` each) -> audio ``[B, C, length]``, channels coherent.

    A codec with ``decode_channels`` (the CAEs) decodes them together: one phase for all,
    block by block, with a progress bar over the blocks of a long stem. Another decodes
    each channel alone with the same decoding noise.

    The decoding noise comes from its own generator seeded with ``seed``, so it does not
    depend on how the latents were sampled: equal latents decode to equal audio (an
    inpainted stem outside its region matches the stem's codec round trip decoded with
    the same seed). ``report("decoding", done, total)`` follows the blocks of a CAE's decoding.
    """
    latents = [z.float() for z in channels]
    if isinstance(codec, ChannelDecoder):  # coherent channels, bounded memory
        generator = torch.Generator(device=device).manual_seed(seed)
        blocks = Progress("decoding", "block", progress, report)
        with blocks, precision_scope(device, precision):
            return codec.decode_channels(
                latents, generator=generator, length=length, on_block=blocks.advance
            ).float()
    with precision_scope(device, precision):
        audio = [
            codec.decode(z, generator=torch.Generator(device).manual_seed(seed), length=length)
            for z in latents
        ]
    return torch.cat(audio, dim=1).float()

"""The one way a LatentCodec is named and loaded: by ``prepare``, recipes and bundles.

A codec *source* is a small JSON object, stored in ``prepare.json`` and ``bundle.json``:

* ``{"path": DIR}``: a CAE checkpoint folder (openriff-cae ``from_pretrained``);
* ``{"music2latent": FILE}``: the official music2latent weights (extra ``[music2latent]``;
  CC BY-NC, so bundles reference the file and never copy it);
* ``{"preset": NAME, "seed": S}``: an untrained CAE preset whose weights
  ``torch.manual_seed(S)`` draws (tests and smoke runs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from openriff.cae.contract import LatentCodec


def codec_source(
    checkpoint: str | os.PathLike[str] | None, preset: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """The source of a codec given as a checkpoint (folder or ``.pt``) or a preset name."""
    if checkpoint is None:
        if preset is None:
            raise ValueError("name a codec: a checkpoint folder, music2latent.pt or a preset")
        return {"preset": preset, "seed": seed}
    path = Path(checkpoint)
    kind = "music2latent" if path.suffix == ".pt" else "path"
    return {kind: str(path.resolve())}


def load_codec(
    source: dict[str, Any],
    device: torch.device | str = "cpu",
    *,
    music2latent: str | os.PathLike[str] | None = None,
) -> LatentCodec:
    """Load the codec a source names.

    Args:
        source: see the module docstring.
        device: where to put it.
        music2latent: where ``music2latent.pt`` is on this machine, overriding the
            recorded path (bundles move between machines).
    """
    if source.get("path"):
        from openriff.cae import from_pretrained

        return from_pretrained(Path(source["path"]), device=device)
    if source.get("music2latent"):
        from openriff.cae.music2latent import Music2LatentCodec

        return Music2LatentCodec(Path(music2latent or source["music2latent"]), device=device)
    from openriff.cae import from_preset

    with torch.random.fork_rng():  # the same untrained weights in every process
        torch.manual_seed(source.get("seed", 0))
        return from_preset(source["preset"]).to(device).eval()

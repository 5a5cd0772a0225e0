"""Generation: a bundle's denoiser turned into stems that fit a context.

* :mod:`.options`: :class:`~.options.Sampling` (the one declaration of the sampling
  settings), :class:`~.options.Generation` (what every mode returns);
* :mod:`.conditions`: inputs to conditions (context latents, CLAP embeddings, style);
* :mod:`.engine`: the steps every mode shares (options, seeds, windowed sampling,
  pseudo-stereo, decoding, settings);
* :mod:`.pipeline`: :class:`~.pipeline.AccompanimentPipeline` and its generate, inpaint
  and vary modes; :mod:`.loops` and :mod:`.songs`: the loop, interpolation and
  whole-song modes.

The public names are exported by :mod:`openriff.pipeline`.
"""

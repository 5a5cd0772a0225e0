"""Training: the denoiser and the CLAP bridge on prepared shards, and whole recipes.

* :mod:`.models`: named model presets, ``train_ldm`` and ``train_bridge``;
* :mod:`.recipe`: a recipe (``recipes/*.json``) run stage by stage: data, codec,
  preparation, denoiser, bundle.
"""

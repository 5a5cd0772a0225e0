"""The audio a task-specific codec is trained on: target stems and their contexts.

A bundle's codec only ever encodes two kinds of audio: contexts (mixes of the stems other
than the target) and, to train and evaluate, the target stems it also decodes. A codec
trained on every stem of a data set spends most of its steps on stems of no use to a bass
model (vocals, leads, drums alone); :func:`write_codec_audio` writes, for each song, its
target stems as they are and one mix of all its other stems, so that a small codec
trained on a small budget (CPU) learns exactly what it will be used for.

Layout written: ``out/<song>/<stem>.wav`` for each target stem and ``out/<song>/others.wav``
(16-bit, 48 kHz mono, the mix scaled down only if it would clip). Each song is written to a
temporary folder and renamed when complete; songs already written are kept, so an
interrupted run resumes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from openriff.pipeline.data.layout import SAMPLE_RATE, ScanReport, load_stems, read_songs

OTHERS = "others.wav"


def write_codec_audio(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    targets: Sequence[str],
    *,
    layout: str = "generic",
    split: str | None = "train",
) -> tuple[list[Path], ScanReport]:
    """Write the target stems and the mix of the other stems of every song.

    Args:
        data: data set root.
        out: output folder (one subfolder per song; resumed if present).
        targets: instruments that are targets (e.g. ``["bass"]``); must not be empty.
        layout: data set layout (see :mod:`openriff.pipeline.data.layout`).
        split: the official split to use (:func:`~openriff.pipeline.data.layout.read_songs`;
            None: all).

    Returns:
        The song folders under ``out`` (written now or before) and the scan report (what
        was skipped and why: unreadable stems, songs left without a readable target).

    Raises:
        ValueError: no targets, an unknown layout, or no song with a target stem.
    """
    import soundfile as sf

    from openriff.latent_diffusion.files import atomic_directory

    if not targets:
        raise ValueError("name at least one target instrument (e.g. bass)")
    songs, report = read_songs(layout, data, split)
    root = Path(out)
    folders = []
    for song in songs:
        wanted = [s.name for s in song.stems if s.instrument in targets]
        folder = root / song.name
        if not wanted:
            continue
        if folder.is_dir():  # written by an earlier run
            folders.append(folder)
            continue
        waves = load_stems(song, report)
        kept = [name for name in wanted if name in waves]
        if not kept:
            report.skipped.append(f"{song.folder}: no readable {', '.join(targets)} stem")
            continue
        others = [wave for name, wave in waves.items() if name not in wanted]
        with atomic_directory(folder) as tmp:
            for name in kept:
                sf.write(tmp / f"{name}.wav", waves[name], SAMPLE_RATE, subtype="PCM_16")
            if others:
                mix = np.sum(others, axis=0)
                peak = float(np.abs(mix).max())
                if peak > 0.99:  # 16-bit files cannot hold a clipping mix
                    mix = mix * (0.99 / peak)
                sf.write(tmp / OTHERS, mix.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        folders.append(folder)
    if not folders:
        raise ValueError(f"{data}: no song has a stem of {', '.join(targets)}")
    return folders, report

"""Offline stand-ins for LAION-CLAP, for tests of code that uses :class:`ClapEncoder`.

``import laion_clap`` loads the bert-base-uncased, roberta-base and facebook/bart-base
tokenizers and builds the roberta-base text model from the Hugging Face cache. These
helpers fill a cache folder with small stand-ins (a byte-level BPE vocabulary trained on
the spot, a WordPiece vocabulary, a one-layer RoBERTa of width 768, the width CLAP's text
projection expects) and save a randomly initialised CLAP in LAION's checkpoint format, so
the real laion-clap code runs with random weights and no network.

Point the cache at a temporary folder *before* anything imports huggingface_hub (at the
top of a ``conftest.py``), then make a checkpoint when a test needs one::

    HUB = offline_hf_cache()                    # sets HF_HOME, HF_HUB_CACHE, offline flags
    path = random_clap_checkpoint(HUB, tmp / "clap.pt")  # stub cache + random HTSAT-tiny

Needs the ``[clap]`` extra (laion-clap, transformers, tokenizers).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

_CORPUS = """a the and of with bass guitar drums piano keys synth vocals strings brass
electric acoustic distorted clean warm bright dark funky groove rock jazz pop ambient loud
soft slow fast riff line part solo chords melody beat kick snare"""
WORDS = _CORPUS.split()
_COMMIT = "0" * 40


def _snapshot(hub: Path, repo: str) -> Path:
    folder = hub / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(_COMMIT)
    snapshot = folder / "snapshots" / _COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def write_stub_hf_cache(hub: str | os.PathLike[str]) -> Path:
    """Fill a Hugging Face hub cache folder with what laion-clap loads (small, random)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel

    root = Path(hub)
    corpus = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    for repo in ("roberta-base", "facebook/bart-base"):
        bpe.save_model(str(_snapshot(root, repo)))
    bert = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (_snapshot(root, "bert-base-uncased") / "vocab.txt").write_text("\n".join(bert) + "\n")
    config = RobertaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=256,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    RobertaModel(config).save_pretrained(str(_snapshot(root, "roberta-base")))
    torch.random.set_rng_state(generator_state)
    return root


def write_random_checkpoint(
    path: str | os.PathLike[str], *, amodel: str = "HTSAT-tiny", fusion: bool = False, seed: int = 0
) -> Path:
    """Save a randomly initialised laion-clap model in LAION's checkpoint format.

    As LAION's files: a ``state_dict`` key, ``module.`` prefixes, text position ids
    included. Needs the stub cache (or a real one).
    """
    import laion_clap

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    module = laion_clap.CLAP_Module(enable_fusion=fusion, device="cpu", amodel=amodel)
    torch.random.set_rng_state(generator_state)
    state = module.model.state_dict()
    positions = "text_branch.embeddings.position_ids"
    if positions not in state:
        state[positions] = torch.arange(514)[None]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in state.items()}}, target)
    return target


def offline_hf_cache() -> Path:
    """Point the Hugging Face cache at a new temporary folder, offline; returns the hub dir.

    Call it before anything imports huggingface_hub (it reads these variables at import).
    """
    hub = Path(tempfile.mkdtemp(prefix="openriff-hf-")) / "hub"
    os.environ["HF_HOME"] = str(hub.parent)
    os.environ["HF_HUB_CACHE"] = str(hub)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    return hub


def random_clap_checkpoint(hub: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Fill ``hub`` with the stand-ins (once) and save a random HTSAT-tiny CLAP at ``path``."""
    if not (Path(hub) / "models--roberta-base").exists():
        write_stub_hf_cache(hub)
    return write_random_checkpoint(path)

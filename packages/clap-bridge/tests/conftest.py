"""Offline LAION-CLAP for the tests: a Hugging Face cache built here, random weights.

``import laion_clap`` loads the bert-base-uncased, roberta-base and facebook/bart-base
tokenizers and builds the roberta-base text model from the Hugging Face cache. The tests
point the cache at a temporary folder (before anything imports huggingface_hub) and fill
it with small stand-ins: a byte-level BPE vocabulary trained here, a WordPiece vocabulary,
and a one-layer RoBERTa of width 768 (the width CLAP's text projection expects). A random
HTSAT-tiny CLAP is then saved in LAION's checkpoint format, which ClapEncoder reads back.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

_HF_HOME = Path(tempfile.mkdtemp(prefix="openriff-hf-"))
os.environ["HF_HOME"] = str(_HF_HOME)
os.environ["HF_HUB_CACHE"] = str(_HF_HOME / "hub")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

WORDS = [
    "a",
    "the",
    "and",
    "of",
    "with",
    "bass",
    "guitar",
    "drums",
    "piano",
    "keys",
    "synth",
    "vocals",
    "strings",
    "brass",
    "electric",
    "acoustic",
    "distorted",
    "clean",
    "warm",
    "bright",
    "dark",
    "funky",
    "groove",
    "rock",
    "jazz",
    "pop",
    "ambient",
    "loud",
    "soft",
    "slow",
    "fast",
    "riff",
    "line",
    "part",
    "solo",
    "chords",
    "melody",
    "beat",
    "kick",
    "snare",
    "hat",
    "cymbal",
]


def _snapshot(repo: str) -> Path:
    folder = _HF_HOME / "hub" / ("models--" + repo.replace("/", "--"))
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def build_hf_cache() -> None:
    """Fill the temporary Hugging Face cache with what laion-clap loads."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel

    corpus = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    for repo in ("roberta-base", "facebook/bart-base"):
        bpe.save_model(str(_snapshot(repo)))
    bert = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (_snapshot("bert-base-uncased") / "vocab.txt").write_text("\n".join(bert) + "\n")
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
    torch.manual_seed(0)
    RobertaModel(config).save_pretrained(str(_snapshot("roberta-base")))


@pytest.fixture(scope="session")
def hf_cache() -> Path:
    """The temporary Hugging Face cache, filled."""
    if not (_HF_HOME / "hub" / "models--roberta-base").exists():
        build_hf_cache()
    return _HF_HOME / "hub"


@pytest.fixture(scope="session")
def clap_checkpoint(hf_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random HTSAT-tiny, no-fusion LAION-CLAP saved as LAION does (``module.`` prefix,
    ``state_dict`` key, text position ids included)."""
    import laion_clap

    torch.manual_seed(0)
    module = laion_clap.CLAP_Module(enable_fusion=False, device="cpu", amodel="HTSAT-tiny")
    state = module.model.state_dict()
    positions = "text_branch.embeddings.position_ids"
    if positions not in state:
        state[positions] = torch.arange(514)[None]
    path = tmp_path_factory.mktemp("clap") / "random-htsat-tiny.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return path

"""The AccompanimentModel bundle: what training writes and what inference loads.

A bundle is a folder::

    bundle.json      format, version, package versions, provenance, what is inside
    codec/           the LatentCodec's checkpoint (copied), unless it is a named preset or
                     the official music2latent (referenced by path: its licence is CC BY-NC)
    denoiser/        the latent-diffusion checkpoint (config.json + safetensors)
    bridge/          optional: a CLAP bridge checkpoint

plus references to what is *not* copied: the LAION-CLAP checkpoint (a path; third-party
weights the user provides). ``bundle.json`` also keeps the preparation and training
settings, and may recommend sampling settings (``"sampling"``: the guidance strength,
steps... that its trainer measured to work best); generation uses them wherever the caller
gives none. The folder is written to a temporary sibling and renamed when complete.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from openriff.cae.contract import LatentCodec
from openriff.latent_diffusion.checkpoint import ModelConfig, from_pretrained, load_config
from openriff.latent_diffusion.files import atomic_directory, read_json_object
from openriff.latent_diffusion.samplers import Denoiser
from openriff.pipeline.codecs import load_codec
from openriff.pipeline.generation.options import check_recommendation
from openriff.pipeline.levels import Levels

if TYPE_CHECKING:
    from openriff.clap_bridge.bridge import ClapBridge

FORMAT = "openriff-accompaniment"
VERSION = 1
# The default model ships inside the package (see the README); OPENRIFF_BUNDLE overrides it.
DEFAULT_BUNDLE = Path(__file__).parent / "default_bundle"


def _versions() -> dict[str, str]:
    found = {}
    for name in ("openriff-cae", "openriff-latent-diffusion", "openriff-clap-bridge",
                 "openriff-metrics", "openriff-pipeline", "torch"):  # fmt: skip
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_bundle(
    target: str | os.PathLike[str],
    *,
    denoiser: str | os.PathLike[str],
    codec: dict[str, Any],
    bridge: str | os.PathLike[str] | None = None,
    clap_checkpoint: str | None = None,
    clap_architecture: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    sampling: dict[str, Any] | None = None,
    levels: Levels | None = None,
    overwrite: bool = False,
) -> Path:
    """Assemble a bundle folder.

    Args:
        target: the bundle folder to write.
        denoiser: a latent-diffusion checkpoint folder (copied).
        codec: ``{"path": CAE checkpoint folder}`` (copied), ``{"music2latent": path of the
            official music2latent.pt}`` (referenced), or ``{"preset": name, "seed": s}`` (an
            untrained preset whose weights ``torch.manual_seed(s)`` draws; tests).
        bridge: a CLAP bridge checkpoint folder (copied), or None.
        clap_checkpoint: path of the LAION-CLAP ``.pt`` (referenced, not copied), or None.
        clap_architecture: ``{"amodel": ..., "fusion": ...}`` of that checkpoint.
        provenance: settings and facts to keep (data preparation, training).
        sampling: recommended sampling settings (keys from
            :data:`~openriff.pipeline.generation.options.RECOMMENDABLE`), used when a
            caller gives none; None recommends nothing.
        levels: the levels its training data had (:class:`~openriff.pipeline.levels.
            Levels`), or None (contexts kept their own levels).
        overwrite: replace an existing bundle.
    """
    out = Path(target)
    check_recommendation(sampling or {}, "sampling")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    if sum(key in codec for key in ("path", "preset", "music2latent")) != 1:
        raise ValueError(f"codec must name one 'path', 'preset' or 'music2latent', got {codec}")
    with atomic_directory(out) as tmp:
        shutil.copytree(denoiser, tmp / "denoiser")
        codec_entry: dict[str, Any] = {"preset": codec.get("preset"), "seed": codec.get("seed", 0)}
        if codec.get("path") is not None:
            shutil.copytree(codec["path"], tmp / "codec")
            codec_entry = {"path": "codec", "source": str(codec["path"])}
        elif codec.get("music2latent") is not None:
            # Referenced, never copied: third-party weights under CC BY-NC.
            codec_entry = {"music2latent": str(codec["music2latent"])}
        if bridge is not None:
            shutil.copytree(bridge, tmp / "bridge")
        info = {
            "format": FORMAT,
            "version": VERSION,
            "packages": _versions(),
            "codec": codec_entry,
            "denoiser": "denoiser",
            "bridge": "bridge" if bridge is not None else None,
            "clap": {"checkpoint": clap_checkpoint, **(clap_architecture or {})},
            "provenance": provenance or {},
            "sampling": dict(sampling or {}),
        }
        if levels is not None:
            info["levels"] = levels.to_info()
        (tmp / "bundle.json").write_text(json.dumps(info, indent=1) + "\n")
    return out


@dataclass
class AccompanimentModel:
    """A loaded bundle: codec, denoiser (and its config), optional bridge, CLAP reference."""

    codec: LatentCodec
    denoiser: Denoiser
    config: ModelConfig
    bridge: ClapBridge | None
    clap_checkpoint: str | None
    info: dict[str, Any]

    @property
    def sampling(self) -> dict[str, Any]:
        """The sampling settings the bundle recommends (empty: the library's defaults)."""
        return dict(self.info.get("sampling") or {})

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: torch.device | str = "cpu",
        codec_override: str | os.PathLike[str] | None = None,
    ) -> AccompanimentModel:
        """Load a bundle folder written by :func:`write_bundle`.

        Args:
            directory: the bundle.
            device: where to put the models.
            codec_override: for a bundle whose codec is the official music2latent (which
                bundles reference by path, never copy), where ``music2latent.pt`` is on
                this machine.
        """
        root = Path(directory)
        path = root / "bundle.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"no accompaniment model at {root}: bundle.json is missing (a bundle is "
                "written by `openriff train ldm`)"
            )
        info = read_bundle_info(path)
        codec_info = dict(info["codec"])
        if codec_info.get("path"):
            codec_info["path"] = str(_inside(root, codec_info["path"], "codec"))
        codec = load_codec(codec_info, device, music2latent=codec_override)
        denoiser_dir = _inside(root, info["denoiser"], "denoiser")
        config = load_config(denoiser_dir)
        denoiser = from_pretrained(denoiser_dir, device=device)
        bridge = None
        if info.get("bridge"):
            from openriff.clap_bridge import ClapBridge

            bridge_dir = _inside(root, info["bridge"], "bridge")
            bridge = ClapBridge.from_pretrained(bridge_dir, device=device)
        return cls(codec, denoiser, config, bridge, info["clap"].get("checkpoint"), info)

    def fingerprint(self, root: Path | None) -> dict[str, Any]:
        """What identifies the model: its folder ``root``, versions, a hash of its files."""
        info = {
            "bundle": None if root is None else str(root.resolve()),
            "bundle_version": self.info.get("version"),
            "packages": self.info.get("packages", {}),
            "codec": self.info.get("codec"),
            "clap_checkpoint": self.clap_checkpoint,
        }
        if root is not None:
            digest = hashlib.sha256()
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                digest.update(str(path.relative_to(root)).encode())
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            info["sha256"] = digest.hexdigest()
        return info


def _inside(root: Path, entry: str, what: str) -> Path:
    """A folder a bundle names, which must lie inside the bundle."""
    folder = (root / entry).resolve()
    if not folder.is_relative_to(root.resolve()):
        raise ValueError(f"{root / 'bundle.json'}: its {what} {entry!r} lies outside the bundle")
    return folder


# bundle.json key -> (allowed JSON types, required); checked before anything is loaded.
_INFO_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "format": ((str,), True),
    "version": ((int,), True),
    "codec": ((dict,), True),
    "denoiser": ((str,), True),
    "bridge": ((str, type(None)), False),
    "clap": ((dict,), False),
    "provenance": ((dict,), False),
    "packages": ((dict,), False),
}


def read_bundle_info(path: Path) -> dict[str, Any]:
    """``bundle.json``, checked key by key (one ``ValueError`` line names what is wrong)."""
    info = read_json_object(path, "bundle.json")
    if info.get("format") != FORMAT:
        raise ValueError(f"{path} is not an OpenRiff accompaniment bundle")
    version = info.get("version")
    if isinstance(version, int) and version > VERSION:  # a newer layout: say so first
        raise ValueError(
            f"{path} has bundle version {version}; this openriff-pipeline reads up to "
            f"{VERSION}: upgrade it"
        )
    for key, (types, required) in _INFO_TYPES.items():
        if key not in info:
            if required:
                raise ValueError(f"{path}: the key {key!r} is missing")
            continue
        value = info[key]
        if not isinstance(value, types) or isinstance(value, bool):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"{path}: {key!r} must be {names}, got {value!r}")
    check_recommendation(info.get("sampling") or {}, f"{path}: 'sampling'")
    try:
        Levels.from_info(info)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    codec = info["codec"]
    sources = [key for key in ("path", "music2latent", "preset") if codec.get(key)]
    if not sources or not all(isinstance(codec[key], str) for key in sources):
        raise ValueError(
            f"{path}: 'codec' must name a 'path', 'music2latent' or 'preset' (a string), "
            f"got {codec!r}"
        )
    seed = codec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{path}: codec 'seed' must be a whole number, got {seed!r}")
    checkpoint = info.setdefault("clap", {}).get("checkpoint")
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise ValueError(f"{path}: clap 'checkpoint' must be a path or null, got {checkpoint!r}")
    return info


def default_bundle() -> Path:
    """The bundle used when none is given: ``$OPENRIFF_BUNDLE``, else the shipped one.

    Raises:
        FileNotFoundError: neither holds a bundle; the message says how to provide one.
    """
    override = os.environ.get("OPENRIFF_BUNDLE")
    root = Path(override) if override else DEFAULT_BUNDLE
    if not (root / "bundle.json").is_file():
        where = f"OPENRIFF_BUNDLE={override}" if override else f"the default model ({root})"
        raise FileNotFoundError(
            f"no model bundle found at {where}: pass --bundle DIR (a bundle written by "
            "`openriff train ldm`) or set OPENRIFF_BUNDLE to one"
        )
    return root


def add_bridge(bundle: str | os.PathLike[str], bridge: str | os.PathLike[str]) -> Path:
    """Put a bridge checkpoint into an existing bundle (the bundle is rewritten atomically)."""
    root = Path(bundle)
    info_path = root / "bundle.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"no accompaniment bundle at {root} (bundle.json is missing)")
    info = read_bundle_info(info_path)
    with atomic_directory(root) as tmp:
        for entry in root.iterdir():
            if entry.name in ("bridge", "bundle.json"):
                continue
            copy = shutil.copytree if entry.is_dir() else shutil.copy2
            copy(entry, tmp / entry.name)
        shutil.copytree(bridge, tmp / "bridge")
        info["bridge"] = "bridge"
        (tmp / "bundle.json").write_text(json.dumps(info, indent=1) + "\n")
    return root

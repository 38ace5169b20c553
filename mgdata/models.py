"""Shared pieces of the Hugging Face model paths (MusicGen, the ``hf`` embedder).

Device resolution and the content hash of a local model folder, which stands in
for a Hub revision in provenance so editing local weights rebuilds the outputs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mgdata.errors import ParamsError


def resolve_device(device: str, key: str = "device") -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other values are checked.

    Args:
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        key: The params key the value came from, named in the error.

    Raises:
        ParamsError: A CUDA/MPS device was requested but is not available.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(key, f"{device!r} requested but torch sees no CUDA device; use auto or cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ParamsError(key, "'mps' requested but it is not available; use auto or cpu")
    return device


def hash_model_dir(path: str | Path) -> str:
    """sha256 over the relative names, sizes and contents of every file in a model folder.

    Covers config, generation config, weights, tokenizer and processor files, so any
    change to what is loaded changes the hash. Hidden files/folders are ignored.
    """
    root = Path(path)
    h = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for f in files:
        h.update(f.relative_to(root).as_posix().encode("utf-8") + b"\0")
        h.update(str(f.stat().st_size).encode("ascii") + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()

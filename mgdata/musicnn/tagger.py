"""``mgdata tag``: tag audio files with a MusiCNN/VGG model, and the patch-wise inference it uses.

A file is decoded and resampled to 16 kHz mono by :mod:`mgdata.audio` (soundfile +
soxr HQ, the resampler ``librosa.load`` uses by default), cut into 3 s log-mel
patches like the original extractor, and the model's sigmoid outputs are averaged
over patches. Files that do not decode are named on stderr and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mgdata.errors import InputError

# Patches per forward pass: the timbral convolutions hold ~9 MB of activations per patch, so a
# long file in one batch would need gigabytes. Measured on 30 s (msd-musicnn, one thread): 4 adds
# ~120 MB to the process's peak RSS (16: ~260 MB) and runs as fast as larger batches.
BATCH_PATCHES = 4
# The keys of mgdata.musicnn.model.MODELS, repeated so `mgdata --help` does not import torch.
MODEL_CHOICES = ("msd-musicnn", "mtt-musicnn", "msd-vgg", "mtt-vgg")


def extract(model, audio: np.ndarray, layers: tuple[str, ...] = ("taggram",), batch: int = BATCH_PATCHES):
    """Run a ported model over every 3 s patch of mono 16 kHz audio.

    Args:
        model: A model from :func:`mgdata.musicnn.model.load_model`.
        audio: Mono float samples at 16 kHz.
        layers: Output names to keep (see :mod:`mgdata.musicnn.model`).
        batch: Patches per forward pass (memory knob; results do not depend on it).

    Returns:
        ``(layer -> [patches, ...] float32 array, padded)``; ``padded`` says the audio
        was shorter than one patch and was padded with silence.
    """
    import torch

    from mgdata.musicnn.frontend import PATCH_FRAMES, log_mel, patches

    logmel = log_mel(audio)
    padded = logmel.shape[0] < PATCH_FRAMES
    x = patches(logmel)
    out: dict[str, list[np.ndarray]] = {k: [] for k in layers}
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch):
            res = model(torch.from_numpy(x[start : start + batch]))
            for k in layers:
                out[k].append(res[k].numpy())
    return {k: np.concatenate(v, axis=0) for k, v in out.items()}, padded


def tag_file(model, labels: tuple[str, ...], path: Path) -> dict:
    """Tag probabilities of one file, averaged over its patches.

    Raises:
        InputError: The file is missing, undecodable or empty (names it).
    """
    from mgdata.audio import read_audio
    from mgdata.musicnn.frontend import SR

    audio, _ = read_audio(path, sr=SR, mono=True)
    if audio.size == 0:
        raise InputError(str(path), "no audio samples")
    if not np.isfinite(audio).all():
        raise InputError(str(path), "non-finite samples")
    feats, padded = extract(model, audio)
    probs = feats["taggram"].mean(axis=0)
    return {
        "file": str(path),
        "duration_s": round(audio.size / SR, 3),
        "patches": int(feats["taggram"].shape[0]),
        "padded": padded,
        "tags": {labels[i]: float(probs[i]) for i in np.argsort(-probs, kind="stable")},
    }


def _cmd_tag(args: argparse.Namespace) -> int:
    from mgdata.musicnn.model import load_model

    model, labels = load_model(args.model)
    results = []
    for path in args.audio:
        try:
            results.append(tag_file(model, labels, Path(path)))
        except InputError as exc:
            print(f"mgdata tag: skipped {exc}", file=sys.stderr)
    top = max(1, args.top)
    for r in results:
        r["tags"] = dict(list(r["tags"].items())[:top])
    if args.json:
        print(json.dumps({"model": args.model, "files": results}, indent=1))
    else:
        for r in results:
            note = ", padded to 3 s" if r["padded"] else ""
            print(f"{r['file']} ({r['duration_s']:.1f} s, {r['patches']} patches{note})")
            width = max(len(t) for t in r["tags"])
            for tag, p in r["tags"].items():
                print(f"  {tag:<{width}}  {p:.3f}")
    return 0 if results else 2


def register_cli(subparsers) -> None:
    """Add ``mgdata tag``."""
    p = subparsers.add_parser(
        "tag",
        help="tag audio files with a pretrained MusiCNN/VGG model (MSD or MagnaTagATune tags)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", choices=MODEL_CHOICES, default="msd-musicnn", help="model (default: msd-musicnn)")
    p.add_argument("--audio", nargs="+", required=True, metavar="FILE", help="audio files (wav, flac, mp3, ogg, opus)")
    p.add_argument("--top", type=int, default=10, help="tags to print per file, most probable first (default: 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_tag)

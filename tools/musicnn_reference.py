"""Reference outputs of the original TensorFlow musicnn extractor, for testing the PyTorch port.

Runs ``musicnn.extractor.extractor`` (the wheel's own code, TensorFlow graph and
librosa front end) on a few deterministic synthesized clips and writes small
arrays to ``tests/fixtures/musicnn/``; ``tests/test_musicnn_reference.py`` compares
``mgdata.musicnn`` with them. TensorFlow is never a dependency of mgdata: this
script runs once, in a throwaway venv::

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 librosa
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0     # its numpy<1.17 / tensorflow pins are not wanted
    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python tools/musicnn_reference.py      # -> tests/fixtures/musicnn/numpy2
    /tmp/tfvenv/bin/pip install numpy==1.26.4 "ml_dtypes<0.5.2"    # (in a copy of the venv) the wheel's own era:
    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python tools/musicnn_reference.py      # -> tests/fixtures/musicnn/numpy1

The extractor's log step, ``np.log10(10000 * x + 1)`` on a float16 spectrogram, runs in
float32 under numpy 1.x and in float16 under numpy >= 2 (NEP 50 promotion), so the
references are written per numpy major version, into ``numpy<major>/``; the port's
``log_mel(float16_log=...)`` covers both.

The clips (:func:`synth_clips`) use numpy only and are quantised to 16-bit PCM, so
the test regenerates the very same samples (their sha256 is stored and checked)
instead of committing audio. Three stay below the level where numpy 2's float16
``10000 * mel`` overflows to ``inf`` (a mel power above 6.55); the fourth, ``loud``,
does not, and ``reference.json`` records, per clip, the fraction of the extractor's
log-mel bins that are ``inf`` (``input_overflow``; see ``mgdata/musicnn/frontend.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

SR = 16000
CLIP_S = 6.5  # 407 frames: two whole 3 s patches and a dropped tail, as the extractor batches
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")


def synth_clips(sr: int = SR) -> dict[str, np.ndarray]:
    """Four deterministic test clips as int16 PCM: harmonic chords, noise bursts, a beat with bass, loud chords.

    Returns:
        Clip name -> int16 samples at ``sr``.
    """
    n = int(CLIP_S * sr)
    t = np.arange(n) / sr
    clips: dict[str, np.ndarray] = {}

    # Harmonic tones: a I-IV-V-I progression of 1.6 s chords, 6 partials with 1/k amplitudes.
    chords = ((220.0, 277.18, 329.63), (293.66, 369.99, 440.0), (329.63, 415.3, 493.88), (220.0, 277.18, 329.63))
    x = np.zeros(n)
    seg = n // len(chords)
    for i, chord in enumerate(chords):
        tt = t[: seg if i < len(chords) - 1 else n - i * seg]
        env = np.minimum(1.0, tt / 0.02) * np.exp(-tt / 1.5)
        for f0 in chord:
            for k in range(1, 7):
                x[i * seg : i * seg + tt.size] += env * np.sin(2 * np.pi * k * f0 * tt) / k
    clips["tones"] = x * (0.02 / 1.0)

    # Noise bursts: white noise with 8 Hz gated decaying envelopes.
    rng = np.random.default_rng(18)
    phase = (t * 4.0) % 1.0
    clips["noise"] = 0.05 * rng.standard_normal(n) * np.exp(-phase * 12.0)

    # A beat: low sine kicks every 0.5 s, hi-hat noise on off-beats, a plucked bass line.
    beat = (t % 0.5) / 0.5
    kick = np.sin(2 * np.pi * 55.0 * (t % 0.5)) * np.exp(-(t % 0.5) * 25.0)
    hat = rng.standard_normal(n) * np.exp(-((t + 0.25) % 0.5) * 60.0)
    bass_f = np.where(beat < 0.5, 82.41, 110.0)
    bass = np.sin(2 * np.pi * bass_f * t) * np.exp(-((t % 0.25) * 8.0))
    clips["beat"] = 0.04 * kick + 0.01 * hat + 0.02 * bass

    # Loud: the harmonic chords at -14 dBFS RMS, a usual mastering level. Under numpy >= 2 the
    # extractor's float16 log overflows to inf on 2.6 % of its bins; under numpy 1 it is an ordinary input.
    clips["loud"] = clips["tones"] / np.sqrt(np.mean(clips["tones"] ** 2)) * 10 ** (-14 / 20)

    return {k: np.round(np.clip(v, -1.0, 1.0) * 32767.0).astype(np.int16) for k, v in clips.items()}


def pcm_sha256(pcm: np.ndarray) -> str:
    """Hash of the little-endian int16 samples (the test checks it regenerates the same clip)."""
    return hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Run the original extractor on the clips and write ``<model>.npz`` + ``reference.json``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="default: tests/fixtures/musicnn/numpy<major>")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = Path("tests/fixtures/musicnn") / f"numpy{np.__version__.split('.')[0]}"

    import librosa
    import soundfile as sf
    import tensorflow as tf
    from musicnn import configuration, extractor

    # The extractor runs batches of BATCH_SIZE patches and, past the first batch, concatenates
    # stale feature arrays (penultimate, cnn1-3); one batch for the whole clip avoids that bug.
    configuration.BATCH_SIZE = 1024

    args.out.mkdir(parents=True, exist_ok=True)
    clips = synth_clips()
    meta: dict = {
        "sr": SR,
        "clip_s": CLIP_S,
        "clips": {k: pcm_sha256(v) for k, v in clips.items()},
        "versions": {
            "tensorflow": tf.__version__,
            "librosa": librosa.__version__,
            "numpy": np.__version__,
            "soundfile": sf.__version__,
            "musicnn": "0.1.0",
        },
        "models": {},
        "input_overflow": {},  # clip -> fraction of the extractor's log-mel bins that are inf
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, pcm in clips.items():
            paths[name] = Path(tmp) / f"{name}.wav"
            sf.write(paths[name], pcm, SR, subtype="PCM_16")
        for name, path in paths.items():
            with np.errstate(over="ignore"):
                _batch, spectrogram = extractor.batch_data(str(path), 187, 187)
            meta["input_overflow"][name] = round(float(np.isinf(spectrogram).mean()), 6)
        _batch, spectrogram = extractor.batch_data(str(paths["tones"]), 187, 187)
        # The first patch, in the dtype the extractor produced (float32 under numpy 1, float16 under 2).
        np.savez_compressed(args.out / "logmel_tones.npz", spectrogram=spectrogram[:187])
        for model in MODELS:
            arrays: dict[str, np.ndarray] = {}
            for name, path in paths.items():
                print(f"{model} {name}", file=sys.stderr)
                with contextlib.redirect_stdout(sys.stderr):  # the extractor prints progress
                    taggram, _labels, feats = extractor.extractor(str(path), model=model, extract_features=True)
                if not np.isfinite(taggram).all():
                    raise SystemExit(f"{model} {name}: non-finite taggram")
                arrays[f"{name}/taggram"] = np.asarray(taggram, dtype=np.float32)
                if "vgg" in model:
                    arrays[f"{name}/pool5"] = np.asarray(feats["pool5"], dtype=np.float32)
                else:
                    for layer in ("penultimate", "max_pool", "mean_pool"):
                        arrays[f"{name}/{layer}"] = np.asarray(feats[layer], dtype=np.float32)
            np.savez_compressed(args.out / f"{model}.npz", **arrays)
            meta["models"][model] = {k: list(v.shape) for k, v in arrays.items()}
    (args.out / "reference.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    sys.exit(main())

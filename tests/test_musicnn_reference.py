"""The PyTorch port against arrays from the original TensorFlow musicnn extractor.

The references come from ``tools/musicnn_reference.py`` (run once under
tensorflow-cpu 2.21; versions in ``tests/fixtures/musicnn/reference.json``). The
clips are regenerated here from the same numpy code and checked by hash, so no
audio is committed. Tolerances are for float32 on different CPUs and kernels:
1e-4 absolute on the taggram and the penultimate layer, 1e-4 relative to the
layer's largest value on the pooled mid-end features (sums over 561 channels).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mgdata.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "musicnn"


def _reference_module():
    spec = importlib.util.spec_from_file_location("musicnn_reference", ROOT / "tools" / "musicnn_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def clips():
    ref = _reference_module()
    pcm = ref.synth_clips()
    meta = json.loads((FIXTURES / "reference.json").read_text())
    assert {k: ref.pcm_sha256(v) for k, v in pcm.items()} == meta["clips"], "synthesized clips changed"
    return {k: v.astype(np.float32) / 32768.0 for k, v in pcm.items()}  # what soundfile/librosa read


def _load(name):
    from mgdata.musicnn.model import load_model

    try:
        return load_model(name)
    except InputError as exc:
        pytest.skip(str(exc))


def test_frontend_matches_librosa_float16_logmel(clips):
    from mgdata.musicnn.frontend import log_mel

    ours = log_mel(clips["tones"])
    theirs = np.load(FIXTURES / "logmel_tones.npz")["spectrogram"]
    assert ours.shape == theirs.shape == (407, 96)
    # float16 values: a float32 rounding difference in the STFT may flip one float16 ulp.
    ulp = np.spacing(np.abs(theirs)).astype(np.float32)
    assert np.all(np.abs(ours - theirs.astype(np.float32)) <= ulp)
    assert np.mean(ours == theirs.astype(np.float32)) > 0.99


@pytest.mark.parametrize("model_name", ["MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"])
def test_port_matches_tensorflow(model_name, clips):
    from mgdata.musicnn.frontend import log_mel, patches

    model, labels = _load(model_name)
    assert len(labels) == 50
    ref = np.load(FIXTURES / f"{model_name}.npz")
    report = []
    for clip, audio in clips.items():
        with torch.no_grad():
            out = model(torch.from_numpy(patches(log_mel(audio))))
        for key in ref.files:
            if not key.startswith(clip + "/"):
                continue
            layer = key.split("/", 1)[1]
            theirs = ref[key]
            ours = out[layer].numpy().reshape(theirs.shape)  # the extractor squeezes vgg's pool5
            diff = float(np.abs(ours - theirs).max())
            report.append(f"{clip}/{layer} {diff:.1e}")
            tol = 1e-4 if layer in ("taggram", "penultimate") else 1e-4 * float(np.abs(theirs).max())
            assert diff <= tol, f"{model_name} {key}: max abs diff {diff:.2e} > {tol:.1e}"
    print(f"{model_name} max abs diff: " + ", ".join(report))

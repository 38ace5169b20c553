"""The ``hf`` embedder, offline, with a tiny random wav2vec2 saved and loaded via from_pretrained."""

from __future__ import annotations

import numpy as np
import pytest

from mgdata.embed import embed_clip, get_embedder
from mgdata.embed.build import build_embeddings
from mgdata.embed.config import EmbedConfig, HFConfig
from mgdata.embed.testing_models import make_tiny_wav2vec2
from mgdata.errors import DependencyError, ParamsError
from mgdata.testing import tone

SR = 16000


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("tiny-w2v2"))


def _cfg(model, **hf) -> EmbedConfig:
    return EmbedConfig(device="cpu", hf=HFConfig(model=str(model), **hf))


def test_frames_shape_dtype_rate_and_description(tiny_model):
    emb = get_embedder("hf", _cfg(tiny_model))
    assert emb.sample_rate == SR and emb.dim == 32 and emb.frame_rate == pytest.approx(50.0)
    f = emb.frames(tone(440.0, 1.0, SR))
    assert f.dtype == np.float32 and f.shape == (49, 32)  # 320-sample conv stride
    desc = emb.describe()
    assert desc["id"] == f"hf:{tiny_model}" and desc["model_class"] == "Wav2Vec2Model"
    assert desc["revision"].startswith("sha256:") and "transformers" in desc["versions"]


def test_layer_selection_averages_hidden_states(tiny_model):
    import torch
    from transformers import AutoFeatureExtractor, AutoModel

    x = tone([220.0, 440.0], 1.0, SR)
    fe = AutoFeatureExtractor.from_pretrained(tiny_model)
    model = AutoModel.from_pretrained(tiny_model).eval()
    with torch.inference_mode():
        hidden = model(**fe([x], sampling_rate=SR, return_tensors="pt"), output_hidden_states=True).hidden_states
    assert len(hidden) == 3
    first = get_embedder("hf", _cfg(tiny_model, layers=[0])).frames(x)
    last = get_embedder("hf", _cfg(tiny_model)).frames(x)
    both = get_embedder("hf", _cfg(tiny_model, layers=[0, -1])).frames(x)
    np.testing.assert_allclose(first, hidden[0][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(last, hidden[-1][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(both, (first + last) / 2, atol=1e-5)
    assert not np.allclose(first, last, atol=1e-3)
    with pytest.raises(ParamsError, match="out of range"):
        get_embedder("hf", _cfg(tiny_model, layers=[5]))


def test_resamples_batches_and_is_deterministic(tiny_model):
    a = get_embedder("hf", _cfg(tiny_model, batch_size=2))
    b = get_embedder("hf", _cfg(tiny_model, batch_size=8))
    x = tone(330.0, 5.0, 22050)  # input at another rate: resampled to the extractor's 16 kHz
    ca = embed_clip(a, x, 22050, window_s=2.0, hop_s=1.0)
    cb = embed_clip(b, x, 22050, window_s=2.0, hop_s=1.0)
    assert ca.n_windows == 4 and ca.frames.shape == (4 * 99, 32)
    np.testing.assert_allclose(ca.frames, cb.frames, atol=1e-5)
    np.testing.assert_array_equal(ca.frames, embed_clip(a, x, 22050, window_s=2.0, hop_s=1.0).frames)


def test_build_through_hf(tiny_model, corpus_artifact):
    res = build_embeddings(corpus_artifact / "mix", cfg=_cfg(tiny_model), embedder="hf", scenario="gain_m6")
    assert set(res.matrices) == {"validation", "test"}
    for m in res.matrices.values():
        assert m.shape == (1, 32) and m.dtype == np.float32 and np.isfinite(m).all()
    assert res.embedder["id"].startswith("hf:")


def test_missing_model_is_a_clear_dependency_error(tmp_path):
    with pytest.raises(DependencyError) as err:
        get_embedder("hf", _cfg("nobody-org/no-such-audio-model"))
    msg = str(err.value)
    assert "nobody-org/no-such-audio-model" in msg and "Hugging Face Hub" in msg
    with pytest.raises(DependencyError, match="does not exist"):
        get_embedder("hf", _cfg(tmp_path / "missing-folder"))


@pytest.mark.parametrize("kind,output,dim", [("ast", "hidden", 32), ("clap", "hidden", 32), ("clap", "pooled", 16)])
def test_ast_and_clap_audio_tower(tmp_path, kind, output, dim):
    from mgdata.embed.testing_models import make_tiny_ast, make_tiny_clap

    path = (make_tiny_ast if kind == "ast" else make_tiny_clap)(tmp_path / kind)
    emb = get_embedder("hf", _cfg(path, output=output))
    assert emb.dim == dim and emb.frame_rate is None  # patch tokens, not time frames
    clip = embed_clip(emb, tone(440.0, 3.0, SR), SR, window_s=2.0, hop_s=1.0)
    per_window = clip.frames.shape[0] // clip.n_windows
    assert clip.frames.shape == (2 * per_window, dim) and np.isfinite(clip.frames).all()
    if output == "pooled":
        assert per_window == 1
        np.testing.assert_allclose(np.linalg.norm(clip.frames, axis=1), 1.0, atol=1e-5)  # CLAP's normalised projection
    again = embed_clip(get_embedder("hf", _cfg(path, output=output)), tone(440.0, 3.0, SR), SR, window_s=2.0, hop_s=1.0)
    np.testing.assert_array_equal(clip.frames, again.frames)

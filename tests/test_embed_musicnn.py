"""The ``musicnn`` embedder: layers, patching, determinism, provenance, config errors (tiny synthesized audio)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from mgdata.config import from_dict
from mgdata.embed.base import EMBEDDERS, embed_clip, embed_clips, get_embedder
from mgdata.embed.config import MUSICNN_LAYERS, EmbedConfig, MusicnnConfig
from mgdata.errors import InputError, ParamsError

SR = 16000


@pytest.fixture(scope="module", autouse=True)
def _wheel_installed():
    from mgdata.musicnn.model import wheel_dir

    try:
        wheel_dir()
    except InputError as exc:
        pytest.skip(str(exc))


def _clip(seconds: float, sr: int = SR, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    rng = np.random.default_rng(0)
    x = 0.05 * np.sin(2 * np.pi * f0 * t) * np.exp(-(t % 0.5) * 4.0) + 0.003 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def _embedder(**settings):
    return get_embedder("musicnn", EmbedConfig(musicnn=MusicnnConfig(**settings)))


def test_registered_and_described_with_checkpoint_provenance():
    from mgdata.musicnn.model import wheel_dir

    assert "musicnn" in EMBEDDERS
    desc = _embedder().describe()
    data = (wheel_dir() / "MSD_musicnn" / ".data-00000-of-00001").read_bytes()
    assert desc["checkpoint"] == "MSD_musicnn" and desc["layer"] == "penultimate"
    assert desc["checkpoint_sha256"] == hashlib.sha256(data).hexdigest()
    assert desc["wheel"].startswith("musicnn ") and desc["dim"] == 200 and desc["sample_rate"] == SR
    assert desc["patch"] == {"frames": 187, "hop_frames": 187, "seconds": 3.0}
    other = _embedder(checkpoint="MTT_musicnn").describe()
    assert other["checkpoint_sha256"] != desc["checkpoint_sha256"]


@pytest.mark.parametrize("layer", sorted(MUSICNN_LAYERS))
def test_dims_per_layer(layer):
    emb = _embedder(layer=layer)
    clip = embed_clip(emb, _clip(4.0), SR, window_s=2.0, hop_s=1.0)
    assert emb.dim == MUSICNN_LAYERS[layer]
    assert clip.frames.shape == (1, emb.dim) and clip.frames.dtype == np.float32
    assert np.isfinite(clip.frames).all()


def test_a_4s_clip_is_its_native_patches_not_the_2s_windows():
    emb = _embedder()
    one = embed_clip(emb, _clip(4.0), SR, window_s=2.0, hop_s=1.0)
    assert one.n_windows == 1 and one.frames.shape[0] == 1  # one centred 3 s patch
    assert one.times_s == pytest.approx([2.0])
    two = embed_clip(_embedder(patch_hop_s=1.0), _clip(4.0), SR, window_s=2.0, hop_s=1.0)
    assert two.frames.shape[0] == 2  # 0-3 s and 1-4 s: every sample seen
    assert two.times_s == pytest.approx([1.504, 2.496])
    assert embed_clip(emb, _clip(30.0), SR, window_s=2.0, hop_s=1.0).frames.shape[0] == 10  # as the wheel


def test_output_equals_the_ported_model_applied_directly():
    from mgdata.musicnn.frontend import log_mel
    from mgdata.musicnn.model import load_model

    x = _clip(4.0)
    got = embed_clip(_embedder(layer="taggram"), x, SR, window_s=2.0, hop_s=1.0).frames
    model, _ = load_model("msd-musicnn")
    patch = log_mel(x)[32 : 32 + 187]  # 251 frames: the centred patch starts at frame 32
    with torch.inference_mode():
        want = model(torch.from_numpy(patch[None]))["taggram"].numpy()
    np.testing.assert_array_equal(got, want)


def test_clip_shorter_than_a_patch_is_padded_or_skipped():
    emb = _embedder()
    short = embed_clip(emb, _clip(1.2), SR, window_s=2.0, hop_s=1.0)
    assert short.padded and short.frames.shape == (1, 200) and np.isfinite(short.frames).all()
    # padding the audio to 3 s (embed_clip) or the log-mel to 187 frames (frames()) both work
    assert emb.frames(_clip(1.2)).shape == (1, 200)
    from mgdata.embed.base import ShortClipError

    with pytest.raises(ShortClipError):
        embed_clip(emb, _clip(2.5), SR, window_s=2.0, hop_s=1.0, short_clip="skip")


def test_deterministic_and_independent_of_torch_threads():
    emb = _embedder()
    x = _clip(9.0, sr=22050)
    a = embed_clips(emb, x, 22050, clip_s=4.0, clip_hop_s=None, window_s=2.0, hop_s=1.0).vectors
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        b = embed_clips(emb, x, 22050, clip_s=4.0, clip_hop_s=None, window_s=2.0, hop_s=1.0).vectors
        assert torch.get_num_threads() == 2  # restored after each forward pass
    finally:
        torch.set_num_threads(prev)
    assert a.shape == (2, 200) and a.tobytes() == b.tobytes()
    # clip by clip: a clip's vector does not depend on the other clips
    c = embed_clip(emb, x[: 4 * 22050], 22050, window_s=2.0, hop_s=1.0).frames.mean(axis=0, dtype=np.float64)
    assert c.astype(np.float32).tobytes() == a[0].tobytes()


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"checkpoint": "MSD_vgg"}, "embed.musicnn.checkpoint"),
        ({"layer": "cnn3"}, "embed.musicnn.layer"),
        ({"patch_hop_s": 4.0}, "embed.musicnn.patch_hop_s"),
        ({"patch_hop_s": 0.0}, "embed.musicnn.patch_hop_s"),
        ({"bogus": 1}, "embed.musicnn.bogus"),
    ],
)
def test_config_errors_name_the_key(settings, key):
    with pytest.raises(ParamsError) as exc:
        from_dict(EmbedConfig, {"musicnn": settings}, "embed")
    assert exc.value.key == key and "\n" not in str(exc.value)


def test_settings_mapping_as_other_stages_pass_it():
    emb = get_embedder("musicnn", {"layer": "mean_pool"})
    assert emb.dim == 753
    with pytest.raises(ParamsError, match=r"musicnn\.layer"):
        get_embedder("musicnn", {"layer": "nope"})


def test_build_through_the_embed_stage_is_byte_identical_across_executors(corpus_artifact, tmp_path):
    import hashlib
    import json

    from mgdata.config import ShardConfig
    from mgdata.embed.build import build_embeddings
    from mgdata.exec import ExecConfig

    cfg = EmbedConfig(embedders=["musicnn"], clip_s=4.0)
    digests = {}
    for name, exe in {
        "serial": ExecConfig(backend="serial"),
        "process2": ExecConfig(backend="process", workers=2),
    }.items():
        out = tmp_path / name
        res = build_embeddings(
            corpus_artifact / "mix", out, cfg=cfg, embedder="musicnn", shards=ShardConfig(max_samples=2), executor=exe
        )
        assert sum(res.samples.values()) == 6
        digests[name] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
    assert digests["serial"] == digests["process2"]
    info = json.loads((tmp_path / "serial" / "artifact.json").read_text())
    sha = get_embedder("musicnn", cfg).describe()["checkpoint_sha256"]
    assert sha in json.dumps(info)  # the checkpoint's sha256 is in the artifact's provenance

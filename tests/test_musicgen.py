"""MusicGen generator, offline: a tiny random MusicGen saved to a temporary folder and
loaded through the same ``from_pretrained`` path real Hub ids use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mgdata.errors import DependencyError, InputError, ParamsError
from mgdata.generate.base import GenRequest, get_generator
from mgdata.generate.config import MusicgenConfig
from mgdata.testing import tone

pytest.importorskip("transformers")

SR = 16000  # tiny model's codec rate (testing_models.TINY_SAMPLE_RATE)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # The tiny model is too small to gain from threads; on the shared 2-core box extra
    # threads only spin against other processes.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from mgdata.generate.testing_models import make_tiny_musicgen

    return make_tiny_musicgen(tmp_path_factory.mktemp("tiny_musicgen") / "model")


@pytest.fixture(scope="module")
def text_gen(tiny_model):
    from mgdata.generate.musicgen import MusicgenGenerator

    return MusicgenGenerator(MusicgenConfig(model=str(tiny_model), batch_size=4))


@pytest.fixture(scope="module")
def primed_gen(tiny_model):
    return get_generator(
        "musicgen", MusicgenConfig(model=str(tiny_model), mode="primed", prime_seconds=0.5, batch_size=2)
    )


def req(key="k", label="happy", seed=1, duration_s=1.0, **kw):
    return GenRequest(key=key, label=label, seed=seed, duration_s=duration_s, **kw)


def differ(a, b, tol=1e-3):
    return float(np.max(np.abs(a - b))) > tol


# ----------------------------------------------------------------- tiny model


def test_tiny_model_loads_through_from_pretrained(tiny_model):
    from transformers import AutoProcessor, MusicgenForConditionalGeneration, MusicgenProcessor, T5TokenizerFast

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = MusicgenForConditionalGeneration.from_pretrained(tiny_model)
    assert isinstance(processor, MusicgenProcessor)
    assert isinstance(processor.tokenizer, T5TokenizerFast)
    ids = processor.tokenizer("A calm track. Quiet and still.").input_ids
    assert ids[-1] == processor.tokenizer.eos_token_id and processor.tokenizer.unk_token_id not in ids
    assert model.config.audio_encoder.sampling_rate == SR
    assert model.decoder.num_codebooks == 2
    assert (tiny_model / "model.safetensors").is_file()


def test_tiny_model_is_reproducible(tmp_path, tiny_model):
    from mgdata.generate.musicgen import hash_model_dir
    from mgdata.generate.testing_models import make_tiny_musicgen

    again = make_tiny_musicgen(tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    assert hash_model_dir(again) == hash_model_dir(tiny_model)


# ----------------------------------------------------------------- text mode


def test_text_mode_shapes_rate_and_finite(text_gen):
    assert text_gen.name == "musicgen" and text_gen.mode == "text" and text_gen.sample_rate == SR
    # 0.55 s is not a whole number of 20 ms codec frames: the clip is trimmed to the exact length.
    out = text_gen.generate([req("a", duration_s=1.0), req("b", label="sad", seed=2, duration_s=0.55)])
    assert [x.shape for x in out] == [(SR,), (round(0.55 * SR),)]
    for x in out:
        assert x.dtype == np.float32 and np.all(np.isfinite(x)) and float(np.std(x)) > 1e-4


def test_max_new_tokens_covers_the_delay_pattern(text_gen):
    # 50 frames/s, 2 codebooks: 50 frames need 50 + 2 - 1 decoder steps.
    assert text_gen.max_new_tokens(1.0) == 51
    assert text_gen.max_new_tokens(0.55) == 28 + 1


def test_same_seed_same_audio_other_seed_different(text_gen):
    a1 = text_gen.generate([req(seed=7)])[0]
    a2 = text_gen.generate([req(seed=7)])[0]
    b = text_gen.generate([req(seed=8, prompt=text_gen.prompt_for(req(seed=7)))])[0]
    assert np.array_equal(a1, a2)
    assert differ(a1, b)


def test_same_seed_identical_after_reloading(tiny_model, text_gen):
    from mgdata.generate.musicgen import MusicgenGenerator

    fresh = MusicgenGenerator(MusicgenConfig(model=str(tiny_model), batch_size=4))
    r = [req("x", seed=11, duration_s=0.5), req("y", label="calm", seed=12, duration_s=0.5)]
    for a, b in zip(text_gen.generate(r), fresh.generate(r)):
        assert np.array_equal(a, b)


def test_batch_matches_single_requests(text_gen):
    reqs = [
        req(f"k{i}", label=lab, seed=100 + i, duration_s=0.5)
        for i, lab in enumerate(["happy", "sad", "activated_pleasant"])
    ]
    batched = text_gen.generate(reqs)
    singles = [text_gen.generate([r])[0] for r in reqs]
    for a, b in zip(batched, singles):
        # same tokens; only float noise of batched kernels may differ
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert differ(batched[0], batched[1])


def test_longer_clip_extends_the_same_sample(text_gen):
    short, long_ = text_gen.generate([req(seed=5, duration_s=0.4), req(seed=5, duration_s=0.8)])
    # Same seed -> same first tokens; the codec's non-causal tail only touches the last frames.
    n = round(0.3 * SR)
    np.testing.assert_allclose(short[:n], long_[:n], atol=1e-5)


def test_prompt_from_template_and_descriptions(text_gen):
    p = text_gen.prompt_for(req(label="deactivated_pleasant", seed=3))
    assert p.startswith("A deactivated pleasant track. ")
    assert p.split("track. ", 1)[1] in text_gen.descriptions["deactivated_pleasant"]
    assert p == text_gen.prompt_for(req(label="deactivated_pleasant", seed=3))
    drawn = {text_gen.prompt_for(req(label="sad", seed=s)) for s in range(40)}
    assert len(drawn) > 1  # the seed picks among several descriptions
    assert text_gen.prompt_for(req(prompt="solo cello")) == "solo cello"
    with pytest.raises(ParamsError, match="no descriptions for label 'nonexistent'"):
        text_gen.prompt_for(req(label="nonexistent"))


def test_prompt_conditions_the_output(text_gen):
    a, b = text_gen.generate(
        [req(seed=4, prompt="A calm track. Quiet piano."), req(seed=4, prompt="A dark track. Ominous low drones.")]
    )
    assert differ(a, b, tol=1e-3)


def test_top_k_one_is_greedy_and_unguided_path_runs(tiny_model):
    from mgdata.generate.musicgen import MusicgenGenerator

    gen = MusicgenGenerator(MusicgenConfig(model=str(tiny_model), top_k=1, guidance_scale=1.0))
    a, b = gen.generate([req(seed=1, prompt="x y", duration_s=0.4), req(seed=2, prompt="x y", duration_s=0.4)])
    assert np.array_equal(a, b)  # top_k=1 leaves nothing to sample: the seed no longer matters
    assert np.all(np.isfinite(a)) and a.shape == (round(0.4 * SR),)


def test_bad_requests_raise_naming_the_key(text_gen):
    with pytest.raises(InputError, match="neg"):
        text_gen.generate([req("neg", seed=-1)])


# ----------------------------------------------------------------- primed mode


def test_primed_mode_returns_the_continuation(primed_gen):
    assert primed_gen.mode == "primed" and primed_gen.sample_rate == SR
    # Primes at another rate are resampled to the codec rate; longer ones are cut to prime_seconds.
    prime_a = tone(220.0, 1.0, 22050)
    prime_b = tone(1760.0, 1.0, 22050, amp=0.8)
    reqs = [
        req("pa", label="calm", seed=3, duration_s=0.7, prime=prime_a, prime_sample_rate=22050),
        req("pb", label="calm", seed=3, duration_s=0.7, prime=prime_b, prime_sample_rate=22050),
        req("pa2", label="calm", seed=3, duration_s=0.7, prime=prime_a, prime_sample_rate=22050),
    ]
    out = primed_gen.generate(reqs)
    assert [x.shape for x in out] == [(round(0.7 * SR),)] * 3  # continuation only, prime dropped
    assert all(np.all(np.isfinite(x)) for x in out)
    np.testing.assert_allclose(out[0], out[2], atol=1e-5)  # same prime + seed (other batch)
    assert differ(out[0], out[1], tol=1e-3)  # the prime conditions the continuation
    np.testing.assert_array_equal(out[0], primed_gen.generate(reqs[:2])[0])  # rerun: identical
    assert primed_gen.describe()["prime_seconds"] == 0.5


def test_primed_mode_rejects_missing_or_short_primes(primed_gen):
    with pytest.raises(InputError, match="nop"):
        primed_gen.generate([req("nop")])
    with pytest.raises(InputError, match="short.*shorter than generate.musicgen.prime_seconds"):
        primed_gen.generate([req("short", prime=tone(440.0, 0.2, SR), prime_sample_rate=SR)])


def test_stereo_checkpoint_is_downmixed_and_primed_with_the_mono_clip(tmp_path):
    from mgdata.generate.musicgen import MusicgenGenerator
    from mgdata.generate.testing_models import make_tiny_musicgen

    path = make_tiny_musicgen(tmp_path / "stereo", audio_channels=2)
    for mode in ("text", "primed"):
        gen = MusicgenGenerator(MusicgenConfig(model=str(path), mode=mode, prime_seconds=0.3))
        assert gen.audio_channels == 2 and gen.max_new_tokens(1.0) == 51  # delay spans one channel's codebooks
        (y,) = gen.generate([req(seed=2, duration_s=0.5, prime=tone(330.0, 0.5, SR), prime_sample_rate=SR)])
        assert y.shape == (round(0.5 * SR),) and np.all(np.isfinite(y)) and float(np.std(y)) > 1e-3


# ----------------------------------------------------------------- provenance


def test_describe_is_json_safe_and_hashes_the_local_folder(text_gen, tiny_model):
    from mgdata.generate.musicgen import hash_model_dir

    d = text_gen.describe()
    json.dumps(d)
    assert d["model"] == str(tiny_model) and d["model_source"] == "local"
    assert d["local_path_hash"] == hash_model_dir(tiny_model) and len(d["local_path_hash"]) == 64
    for k in (
        "guidance_scale",
        "top_k",
        "top_p",
        "temperature",
        "batch_size",
        "mode",
        "prompt_template",
        "descriptions_sha256",
        "transformers_version",
        "revision",
    ):
        assert k in d
    assert d["top_k"] == 250 and d["guidance_scale"] == 3.0 and d["device"] == "cpu"


def test_hash_model_dir_changes_with_any_file(tmp_path):
    from mgdata.generate.musicgen import hash_model_dir

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 10)
    h0 = hash_model_dir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 9 + b"\x01")
    assert hash_model_dir(tmp_path) != h0


# ----------------------------------------------------------------- config / errors


def test_missing_local_model_folder(tmp_path):
    from mgdata.generate.musicgen import MusicgenGenerator

    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(DependencyError, match="does not exist.*generate.musicgen.model"):
        MusicgenGenerator(MusicgenConfig(model=str(missing)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DependencyError, match="cannot load MusicGen from folder"):
        MusicgenGenerator(MusicgenConfig(model=str(tmp_path / "empty")))


def test_missing_hub_model_offline_names_id_and_hub(monkeypatch):
    import huggingface_hub.constants

    from mgdata.generate.musicgen import MusicgenGenerator

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DependencyError) as err:
        MusicgenGenerator(MusicgenConfig(model="mgdata-test/no-such-musicgen"))
    msg = str(err.value)
    assert "'mgdata-test/no-such-musicgen'" in msg and "Hugging Face Hub" in msg
    assert "network" in msg and "generate.musicgen.model" in msg


def test_packaged_descriptions_cover_quadrants_and_moods():
    from mgdata.generate.musicgen import load_descriptions

    desc, sha = load_descriptions(None)
    wanted = {
        "activated_pleasant",
        "deactivated_pleasant",
        "activated_unpleasant",
        "deactivated_unpleasant",
        "happy",
        "uplifting",
        "positive",
        "calm",
        "relaxing",
        "dark",
        "dramatic",
        "sad",
        "melancholic",
    }
    assert wanted <= set(desc) and len(sha) == 64
    assert all(len(v) >= 3 for v in desc.values())


def test_bad_descriptions_file_is_a_params_error(tmp_path):
    from mgdata.generate.musicgen import load_descriptions

    with pytest.raises(ParamsError, match="descriptions_file.*does not exist"):
        load_descriptions(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("happy: []\n")
    with pytest.raises(ParamsError, match="'happy'"):
        load_descriptions(str(bad))
    good = tmp_path / "good.yaml"
    good.write_text("happy: [Bright.]\n")
    assert load_descriptions(str(good))[0] == {"happy": ["Bright."]}


def test_device_resolution():
    import torch

    from mgdata.generate.musicgen import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ParamsError, match="device"):
            resolve_device("cuda")


def test_bad_template_placeholder_is_a_params_error(tiny_model):
    from mgdata.generate.musicgen import MusicgenGenerator

    with pytest.raises(ParamsError, match="prompt_template"):
        MusicgenGenerator(MusicgenConfig(model=str(tiny_model), prompt_template="A {label} {mood} track"))

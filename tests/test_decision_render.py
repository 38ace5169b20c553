"""``mgdata decision render``: from any audio stem (Ogg Opus, mp3, any rate/channels) and from a test pair (tiny)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from mgdata.audio import encode_flac
from mgdata.cli import main
from mgdata.config import ShardConfig
from mgdata.decision.config import DecisionConfig
from mgdata.decision.data import load_pairs, window_key
from mgdata.decision.render import StemTokenizer, read_window_audio
from mgdata.decision.train import train_model
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter, Sample, encode_json, encode_npy, make_key
from mgdata.tokens.condense import condense
from mgdata.tokens.frames import StftChromaEncoder

SR = 8000  # corpus rate
SEG_S = 0.25
N_TOK = 8
TONES = (261.63, 329.63, 392.0, 466.16)  # C, E, G, A#: four pitch classes, one per token
K = len(TONES)
STEMS = ("soprano", "alto", "bass")
SPLITS = {"train": 4, "validation": 2, "test": 2}
CFG = "chroma_stft-s0.25-k4"


def _tones(toks, sr: int) -> np.ndarray:
    t = np.arange(int(SEG_S * sr)) / sr
    return np.concatenate([0.3 * np.sin(2 * np.pi * TONES[k] * t) for k in toks]).astype(np.float32)


def _codebook(enc: StftChromaEncoder) -> np.ndarray:
    """One centroid per tone: the mean chroma of a segment of it."""
    rows = [condense(enc.frames(_tones([k] * 4, enc.sample_rate)), enc.frame_rate, SEG_S)[1] for k in range(K)]
    return np.stack(rows).astype(np.float32)


def _prov(enc: StftChromaEncoder) -> Provenance:
    extra = {"encoder": enc.describe(), "encoder_name": "chroma_stft", "segment_s": SEG_S, "k": K}
    return Provenance(
        builder="test", source="synthetic", source_version="0", licence="CC0", seed=0, params_hash="0" * 64, extra=extra
    )


def _build(root: Path) -> dict[str, Path]:
    """data/tokens/<cfg> (pair layout, encoder in its provenance), data/stems (per stem-window), a trained model."""
    enc = StftChromaEncoder()
    tok_dir, stem_dir = root / "data" / "tokens" / CFG, root / "data" / "stems"
    rng = np.random.default_rng(0)
    with (
        ArtifactWriter(tok_dir, fingerprint="t", provenance=_prov(enc), shards=ShardConfig()) as tw,
        ArtifactWriter(stem_dir, fingerprint="s", provenance=_prov(enc), shards=ShardConfig()) as sw,
    ):
        for split, n in SPLITS.items():
            for t in range(n):
                track, base = f"{split}-t{t}", rng.integers(0, K, size=N_TOK)
                toks = {stem: (base + s) % K for s, stem in enumerate(STEMS)}
                for stem in STEMS:
                    meta = {"track_id": track, "window_index": 0, "stem": stem, "split": split, "sample_rate": SR}
                    sw.write(
                        split,
                        Sample(
                            window_key(track, 0, stem),
                            {"flac": encode_flac(_tones(toks[stem], SR), SR), "json": encode_json(meta)},
                        ),
                    )
                for a in STEMS:
                    for b in STEMS:
                        if a != b:
                            meta = {"track_id": track, "window_index": 0, "stem_a": a, "stem_b": b, "split": split}
                            files = {
                                "a_tokens.npy": encode_npy(toks[a].astype(np.int16)),
                                "b_tokens.npy": encode_npy(toks[b].astype(np.int16)),
                                "json": encode_json(meta),
                            }
                            tw.write(split, Sample(make_key(track, "w0000", a, b), files))
    np.save(tok_dir / "codebook.npy", _codebook(enc))
    data = load_pairs(tok_dir)
    cfg = DecisionConfig(
        arch="aligned", d_model=8, n_heads=2, n_layers=1, ff_dim=16, max_len=16, batch_size=8, max_epochs=2, threads=1
    )
    model_dir = root / "data" / "decision" / CFG
    train_model(data.split("train"), data.split("validation"), K, cfg, model_dir)
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"decision": {"render_corpus_windows": 12}}))
    return {"tokens": tok_dir, "stems": stem_dir, "model": model_dir, "params": params}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("render"))


def _render(world, audio: Path, out: Path, *extra: str) -> int:
    args = ["decision", "render", "--model", str(world["model"]), "--audio", str(audio), "--out", str(out)]
    return main([*args, "--stems", str(world["stems"]), "--params", str(world["params"]), *extra])


def _stem(seconds: float, sr: int, channels: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    toks = rng.integers(0, K, size=int(np.ceil(seconds / SEG_S)))
    x = np.resize(_tones(toks, sr), int(seconds * sr))
    return np.stack([x * (1.0 - 0.2 * c) for c in range(channels)], 1)


def test_tokenizer_rebuilds_the_artifact_encoder(world):
    data = load_pairs(world["tokens"])
    tok = StemTokenizer.from_artifact(world["tokens"], data.codebook)
    assert tok.segment_s == SEG_S and tok.encoder.describe() == _prov(StftChromaEncoder()).extra["encoder"]
    keys = [k for k, w in data.windows.items() if w["meta"]["split"] == "train"][:4]
    audio = read_window_audio(world["stems"], keys)
    for k in keys:  # the corpus audio encodes back to its tokens
        assert np.array_equal(tok.tokens(*audio[k], where=k), data.windows[k]["tokens"])


def test_render_from_an_unseen_ogg_opus_stem(world, tmp_path, capsys):
    src = tmp_path / "user.opus"
    seconds = 3.1  # 12.4 segments: 13 tokens, two generation chunks of the 8-token training windows
    sf.write(src, _stem(seconds, 48000, 2), 48000, format="OGG", subtype="OPUS")
    assert _render(world, src, tmp_path / "b.flac", "--mix", str(tmp_path / "mix.flac")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tokens"] == 13
    n_in = sf.info(src).frames / 48000
    for name in ("b.flac", "mix.flac"):
        info = sf.info(tmp_path / name)
        assert info.samplerate == SR and info.channels == 1
        assert abs(info.frames / SR - n_in) < SEG_S
    meta = json.loads((tmp_path / "b.json").read_text())
    assert len(meta["predicted"]) == 13 and meta["chunk_tokens"] == N_TOK
    assert all(k.startswith("train") for k, _ in meta["segments"])
    # same seed, same bytes; the default output sits beside the input
    assert _render(world, src, tmp_path / "again.flac") == 0
    assert (tmp_path / "again.flac").read_bytes() == (tmp_path / "b.flac").read_bytes()
    assert main(["decision", "render", "--model", str(world["model"]), "--audio", str(src),
                 "--stems", str(world["stems"]), "--params", str(world["params"])]) == 0  # fmt: skip
    assert (tmp_path / "user_b.flac").read_bytes() == (tmp_path / "b.flac").read_bytes()


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="libsndfile without mp3")
def test_render_from_mp3_mono_44k(world, tmp_path):
    src = tmp_path / "user.mp3"
    sf.write(src, _stem(2.0, 44100, 1), 44100, format="MP3", subtype="MPEG_LAYER_III")
    assert _render(world, src, tmp_path / "b.flac") == 0
    assert abs(sf.info(tmp_path / "b.flac").frames / SR - sf.info(src).frames / 44100) < SEG_S


def test_undecodable_file_is_named_on_one_line(world, tmp_path, capsys):
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"OggS not really an ogg file" * 10)
    assert _render(world, bad, tmp_path / "b.flac") == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b.flac").exists()


def test_pair_mode_still_works(world, tmp_path, capsys):
    data = load_pairs(world["tokens"])
    pair = sorted(data.split("test"), key=lambda p: p.pair_key)[0]
    args = ["decision", "render", "--pair", pair.pair_key, "--model", str(world["model"] / "model.pt")]
    rc = main([*args, "--stems", str(world["stems"]), "--out", str(tmp_path), "--params", str(world["params"])])
    assert rc == 0
    b, sr = sf.read(tmp_path / f"{pair.pair_key}_b.flac")
    assert sr == SR and len(b) == N_TOK * int(SEG_S * SR)
    assert (tmp_path / f"{pair.pair_key}_mix.flac").is_file()
    # neither or both of --pair / --audio is an error
    assert main(["decision", "render", "--model", str(world["model"])]) == 2

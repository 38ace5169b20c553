"""Token loading in both layouts, rendering, evaluation statistics and the stage end to end (tiny)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig
from mgdata.decision.config import DecisionConfig
from mgdata.decision.data import load_pairs, window_key
from mgdata.decision.evaluate import Tables, baseline_predictions, compare, per_track, shuffled_sources
from mgdata.decision.render import SegmentCorpus, find_pair, mix, read_window_audio
from mgdata.decision.stage import build_decision, plan
from mgdata.errors import InputError
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter, Sample, encode_json, encode_npy, make_key

K = 4
SR = 8000
SEG_S = 0.25
N_TOK = 8
STEMS = ("soprano", "alto", "bass")
SPLITS = {"train": 4, "validation": 2, "test": 3}


def _prov() -> Provenance:
    return Provenance(
        builder="test", source="synthetic", source_version="0", licence="CC0", seed=0, params_hash="0" * 64
    )


def _world():
    """Per (track, window, stem): tokens and audio (a tone per token, so segments are recognisable)."""
    rng = np.random.default_rng(0)
    out = []
    for split, n in SPLITS.items():
        for t in range(n):
            track = f"{split}-t{t}"
            base = rng.integers(0, K, size=N_TOK)
            for s, stem in enumerate(STEMS):
                toks = (base + s) % K
                seg = int(SEG_S * SR)
                tt = np.arange(seg) / SR
                audio = np.concatenate([0.3 * np.sin(2 * np.pi * (200 + 100 * k) * tt) for k in toks])
                out.append((split, track, 0, s, stem, toks, audio.astype(np.float32)))
    return out


def _codebook() -> np.ndarray:
    return np.eye(K, 3, dtype=np.float32) + 0.1


def make_pair_layout(root: Path) -> tuple[Path, Path]:
    """v1 token artifact (a_tokens/b_tokens per ordered pair) and v1 stems artifact (a.flac/b.flac)."""
    world = _world()
    tok_dir, stem_dir = root / "tokens-v1", root / "stems-v1"
    by_win: dict = {}
    for w in world:
        by_win.setdefault((w[0], w[1], w[2]), []).append(w)
    caps = ShardConfig(max_samples=8)
    with (
        ArtifactWriter(tok_dir, fingerprint="t", provenance=_prov(), shards=caps) as tw,
        ArtifactWriter(stem_dir, fingerprint="s", provenance=_prov(), shards=caps) as sw,
    ):
        for (split, track, win), items in by_win.items():
            for a in items:
                for b in items:
                    if a is b:
                        continue
                    key = make_key(track, f"w{win:04d}", a[4], b[4])
                    meta = {"track_id": track, "window_index": win, "stem_a": a[4], "stem_b": b[4], "split": split}
                    tw.write(
                        split,
                        Sample(
                            key,
                            {
                                "a_tokens.npy": encode_npy(a[5].astype(np.int16)),
                                "b_tokens.npy": encode_npy(b[5].astype(np.int16)),
                                "json": encode_json(meta),
                            },
                        ),
                    )
                    sw.write(
                        split,
                        Sample(
                            key,
                            {
                                "a.flac": encode_flac(a[6], SR),
                                "b.flac": encode_flac(b[6], SR),
                                "json": encode_json({**meta, "sample_rate": SR}),
                            },
                            seconds=2.0,
                        ),
                    )
    np.save(tok_dir / "codebook.npy", _codebook())
    return tok_dir, stem_dir


def make_window_layout(root: Path) -> Path:
    """v2 token artifact: one sample per stem-window (tokens.npy) + codebook.npy + pairs.parquet."""
    world = _world()
    tok_dir = root / "tokens-v2"
    rows = []
    with ArtifactWriter(tok_dir, fingerprint="t2", provenance=_prov(), shards=ShardConfig(max_samples=8)) as tw:
        for split, track, win, s, stem, toks, _ in world:
            key = make_key(track, f"w{win:03d}", f"s{s:02d}")
            tw.write(
                split,
                Sample(
                    key,
                    {
                        "tokens.npy": encode_npy(toks.astype(np.int16)),
                        "json": encode_json(
                            {"key": key, "track_id": track, "split": split, "window_index": win, "stem": stem}
                        ),
                    },
                ),
            )
    for split, track, win, sa, stem_a, *_ in world:
        for _, track_b, win_b, sb, stem_b, *_ in world:
            if track_b == track and win_b == win and sa != sb:
                ka, kb = make_key(track, f"w{win:03d}", f"s{sa:02d}"), make_key(track, f"w{win:03d}", f"s{sb:02d}")
                rows.append(
                    {
                        "pair_key": f"{ka}__{kb}",
                        "a_key": ka,
                        "b_key": kb,
                        "track_id": track,
                        "window_index": win,
                        "stem_a": stem_a,
                        "stem_b": stem_b,
                        "split": split,
                    }
                )
    pl.DataFrame(rows).write_parquet(tok_dir / "pairs.parquet")
    np.save(tok_dir / "codebook.npy", _codebook())
    return tok_dir


@pytest.fixture(scope="module")
def arts(tmp_path_factory):
    root = tmp_path_factory.mktemp("dec")
    tok1, stems1 = make_pair_layout(root)
    return {"v1": tok1, "stems": stems1, "v2": make_window_layout(root), "root": root}


def _canon(data):
    return sorted((p.track_id, p.split, p.stem_a, p.stem_b, tuple(p.a), tuple(p.b)) for p in data.pairs)


def test_both_layouts_give_the_same_pairs(arts):
    d1, d2 = load_pairs(arts["v1"]), load_pairs(arts["v2"])
    assert (d1.layout, d2.layout) == ("pair", "stem-window")
    assert d1.k == d2.k == K
    n_pairs = sum(SPLITS.values()) * len(STEMS) * (len(STEMS) - 1)
    assert len(d1.pairs) == len(d2.pairs) == n_pairs
    assert _canon(d1) == _canon(d2)
    assert len(d1.split("test")) == SPLITS["test"] * 6
    p = d1.pairs[0]
    assert p.a_key == window_key(p.track_id, p.window_index, p.stem_a)
    assert find_pair(d1, p.pair_key) is p
    with pytest.raises(InputError, match="no pair with key 'nope'"):
        find_pair(d1, "nope")


def test_bad_artifacts_are_named(arts, tmp_path):
    with pytest.raises(Exception, match="artifact.json"):
        load_pairs(tmp_path / "missing")
    bad = tmp_path / "nocb"
    bad.mkdir()
    for f in arts["v1"].iterdir():
        if f.name != "codebook.npy":
            (bad / f.name).write_bytes(f.read_bytes())
    with pytest.raises(InputError, match="missing codebook"):
        load_pairs(bad)
    small = tmp_path / "k2"
    small.mkdir()
    for f in arts["v1"].iterdir():
        (small / f.name).write_bytes(f.read_bytes())
    np.save(small / "codebook.npy", np.ones((2, 3), np.float32))
    with pytest.raises(InputError, match="outside 0..1"):
        load_pairs(small)
    nopairs = tmp_path / "v2np"
    nopairs.mkdir()
    for f in arts["v2"].iterdir():
        if f.name != "pairs.parquet":
            (nopairs / f.name).write_bytes(f.read_bytes())
    with pytest.raises(InputError, match="missing pair index"):
        load_pairs(nopairs)
    with pytest.raises(InputError, match="split holdout.*empty split"):
        plan(arts["v1"], DecisionConfig(test_split="holdout"))
    with pytest.raises(InputError, match="max_len=4"):
        plan(arts["v1"], DecisionConfig(max_len=4))
    with pytest.raises(InputError, match="codebook has K=4, the configuration asks for K=16"):
        plan(arts["v1"], DecisionConfig(), k=16)


def test_render_corpus_continuity_and_fallback(arts):
    data = load_pairs(arts["v1"])
    keys = sorted(k for k, w in data.windows.items() if w["meta"]["split"] == "train")
    audio = read_window_audio(arts["stems"], keys)
    corpus = SegmentCorpus.build({k: audio[k] for k in keys}, {k: data.windows[k]["tokens"] for k in keys}, SEG_S)
    assert corpus.seg_len == int(SEG_S * SR) and len(corpus.index) == len(keys) * N_TOK
    # a sequence copied from one corpus window is rendered from that window, segment after segment
    src = keys[0]
    toks = data.windows[src]["tokens"]
    chosen = corpus.choose(toks, data.codebook, first_ref=corpus.feats[corpus.index.index((src, 0))])
    assert [corpus.index[c] for c in chosen] == [(src, j) for j in range(N_TOK)]
    out = corpus.concatenate(chosen, crossfade=0)
    np.testing.assert_allclose(out, audio[src][0][: N_TOK * corpus.seg_len], atol=1e-6)
    faded = corpus.concatenate(chosen, crossfade=40)
    assert len(faded) == len(out)
    # every chosen segment carries the requested label
    want = [int(x) for x in (toks + 1) % K]
    got = corpus.choose(want, data.codebook, None)
    assert [int(corpus.labels[corpus.index[c][0]][corpus.index[c][1]]) for c in got] == want
    assert np.max(np.abs(mix(np.ones(10, np.float32), np.ones(10, np.float32)))) <= 0.99 + 1e-6
    with pytest.raises(InputError, match="no audio for stem-window"):
        read_window_audio(arts["stems"], ["nope_w0000_x"])


def test_baselines_and_statistics():
    from mgdata.decision.data import TokenPair

    pairs = [
        TokenPair(f"t{i % 3}", "test", np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0]), f"a{i}", f"b{i}")
        for i in range(6)
    ]
    tables = Tables.fit(pairs, K)
    assert np.allclose(tables.cond.sum(1), 1.0) and tables.cond[0].argmax() == 1
    none = [None] * len(pairs)
    am = baseline_predictions("cond_argmax", pairs, tables, seed=0, allowed=none)
    assert all(np.array_equal(x, p.b) for x, p in zip(am, pairs))
    mf = baseline_predictions("most_frequent", pairs, tables, seed=0, allowed=[np.array([2])] * len(pairs))
    assert all((x == 2).all() for x in mf)
    r1 = baseline_predictions("random", pairs, tables, seed=3, allowed=none)
    r2 = baseline_predictions("random", pairs, tables, seed=3, allowed=none)
    assert all(np.array_equal(a, b) for a, b in zip(r1, r2))
    rc = baseline_predictions("random", pairs, tables, seed=3, allowed=[np.array([0, 3])] * len(pairs))
    assert set(np.concatenate(rc)) <= {0, 3}
    sh = shuffled_sources(pairs, 0)
    assert len(sh) == len(pairs)
    assert per_track([1, 2, 3, 5], ["b", "a", "b", "a"]) == {"a": 3.5, "b": 2.0}
    strong = compare(list(range(10, 20)), list(range(10)), n_permutations=1000, seed=0)
    assert strong["p_value"] < 1e-3 and strong["rank_biserial"] == pytest.approx(1.0)
    assert strong["median_diff"] == 10.0 and strong["perm_p_value"] < 0.01
    same = compare([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], n_permutations=1000, seed=0)
    assert same["p_value"] > 0.3 and same["rank_biserial"] == pytest.approx(0.0)


def _numbers_only(d, path=""):
    for k, v in d.items():
        if isinstance(v, dict):
            _numbers_only(v, f"{path}.{k}")
        else:
            assert isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), f"{path}.{k}={v!r}"


def test_stage_end_to_end_tiny(arts, tmp_path):
    cfg = DecisionConfig(
        d_model=16,
        n_heads=2,
        n_layers=1,
        ff_dim=32,
        max_len=16,
        batch_size=8,
        max_epochs=2,
        n_permutations=200,
        n_renders=2,
        threads=1,
    )
    res = build_decision(
        arts["v1"],
        tmp_path / "out",
        cfg=cfg,
        segment_s=SEG_S,
        name="tiny",
        stems_path=arts["stems"],
        plots_dir=tmp_path / "plots",
    )
    m = res.metrics
    _numbers_only(m)
    assert m["n_test_tracks"] == SPLITS["test"] and m["k"] == K
    for setting in ("free", "constrained"):
        assert set(m[setting]["vs_random"]) >= {"p_value", "u", "median_diff", "rank_biserial"}
        assert {"model_shuffled_a", "model_greedy"} <= set(m[setting]["tpp"])
        assert "greedy_vs_cond_argmax" in m[setting]
    for f in ("tpp_boxplot.png", "lcp.png", "entropy.png", "tpp.csv", "lcp.csv", "entropy.json"):
        assert (tmp_path / "plots" / f).stat().st_size > 0
    assert (tmp_path / "out" / "model.pt").is_file()
    assert len(res.renders) == 2
    for r in res.renders:
        b, sr = sf.read(io.BytesIO(Path(r["b"]).read_bytes()))
        assert sr == SR and len(b) == N_TOK * int(SEG_S * SR)
        info = json.loads(Path(r["json"]).read_text())
        assert all(k.split("_")[0].startswith("train") for k, _ in info["segments"])
    # a rerun resumes the finished checkpoint and gives the same model metrics
    again = build_decision(arts["v1"], tmp_path / "out", cfg=cfg, segment_s=SEG_S, name="tiny")
    assert again.train.resumed_epochs == 2
    assert again.metrics["free"]["tpp"] == m["free"]["tpp"]
    # the CLI renders a pair with the trained model; a K mismatch is named
    from mgdata.cli import main

    key = res.renders[0]["pair_key"]
    params = tmp_path / "params.yaml"
    import yaml

    params.write_text(
        yaml.safe_dump({"decision": {"d_model": 16, "n_heads": 2, "n_layers": 1, "ff_dim": 32, "max_len": 16}})
    )
    rc = main(
        [
            "decision",
            "render",
            "--pair",
            key,
            "--tokens",
            str(arts["v1"]),
            "--model",
            str(tmp_path / "out" / "model.pt"),
            "--stems",
            str(arts["stems"]),
            "--segment-s",
            str(SEG_S),
            "--out",
            str(tmp_path / "cli"),
            "--params",
            str(params),
        ]
    )
    assert rc == 0 and (tmp_path / "cli" / f"{key}_mix.flac").is_file()
    rc = main(
        [
            "decision",
            "render",
            "--pair",
            "missing",
            "--tokens",
            str(arts["v1"]),
            "--model",
            str(tmp_path / "out" / "model.pt"),
            "--stems",
            str(arts["stems"]),
            "--segment-s",
            str(SEG_S),
            "--out",
            str(tmp_path / "cli"),
            "--params",
            str(params),
        ]
    )
    assert rc == 2


def test_seeds_error_bars_same_for_every_executor(arts, tmp_path):
    """Trials train in parallel on the executor: serial and 2/3 process workers write the same bytes.

    Headline numbers are the mean (and sample std) over seeds, p the largest with a count of seeds
    agreeing; the saved model and checkpoint are the first seed's, the same as a one-seed run.
    """
    from mgdata.decision.stage import ALPHA, headline
    from mgdata.exec import ExecConfig

    cfg = DecisionConfig(
        d_model=16,
        n_heads=2,
        n_layers=1,
        ff_dim=32,
        max_len=16,
        batch_size=8,
        max_epochs=2,
        n_permutations=200,
        n_renders=0,
        threads=1,
        seed=5,
        trials=3,
    )
    execs = {
        "serial": ExecConfig(backend="serial"),
        "process2": ExecConfig(backend="process", workers=2),
        "process3": ExecConfig(backend="process", workers=3),
    }
    runs = {
        n: build_decision(arts["v1"], tmp_path / n, cfg=cfg, segment_s=SEG_S, name="tiny", executor=ex)
        for n, ex in execs.items()
    }
    files = ("model.pt", "last.pt", "eval.json")
    ref = runs["serial"]
    for n, res in runs.items():
        for f in files:
            assert (tmp_path / n / f).read_bytes() == (tmp_path / "serial" / f).read_bytes(), (n, f)
        assert res.metrics["trials"] == ref.metrics["trials"], n
    tr = ref.metrics["trials"]
    assert (tr["n"], tr["first_seed"], sorted(tr["per_seed"])) == (3, 5, ["5", "6", "7"]) and len(ref.trials) == 3
    per = [tr["per_seed"][str(s)] for s in (5, 6, 7)]
    agg = tr["aggregate"]
    # the seeds are different models
    assert len({json.dumps(t.history) for t, _ in ref.trials}) == 3
    tpp = [p["free_tpp_model"] for p in per]
    assert agg["free_tpp_model"] == pytest.approx(np.mean(tpp))
    assert agg["free_tpp_model_std"] == pytest.approx(np.std(tpp, ddof=1))
    p_rand = [p["free_p_vs_random"] for p in per]
    assert agg["free_p_vs_random"] == max(p_rand)
    assert agg["free_p_vs_random_agree"] == sum(p < ALPHA for p in p_rand)
    assert agg["test_tracks"] == SPLITS["test"] and isinstance(agg["test_tracks"], int)
    assert per[0] == headline({**ref.evaluation.metrics, "train": ref.train.summary()})
    # the first seed is the saved model: the same bytes as a run with that one seed
    one = build_decision(
        arts["v1"], tmp_path / "one", cfg=DecisionConfig(**{**cfg.__dict__, "trials": 1}), segment_s=SEG_S
    )
    assert (tmp_path / "one" / "model.pt").read_bytes() == (tmp_path / "serial" / "model.pt").read_bytes()
    assert one.metrics["trials"]["aggregate"]["free_tpp_model_std"] == 0.0
    assert one.metrics["free"] == ref.metrics["free"]

"""Experiments on tiny in-code embedding tables: baseline, augmented, generated-classified, synthetic-only,
robustness, FAD, track-level aggregation, result tables."""

import json

import numpy as np
import polars as pl
import pytest

from mgdata.classify.config import ClassifyConfig, ProbeConfig
from mgdata.classify.experiments import (
    EmbTable,
    draw_augmentation,
    frechet_distance,
    generated_data,
    prepare_task,
    run_augmented,
    run_baseline,
    run_fad,
    run_generated_classified,
    run_robustness,
    run_synthetic_only,
    track_level,
)
from mgdata.classify.report import numbers_only, results_table, write_confusion, write_delta_plot
from mgdata.errors import InputError

QUADS = ["activated_pleasant", "activated_unpleasant", "deactivated_pleasant", "deactivated_unpleasant"]
DIM = 6
PROBE = ProbeConfig(hidden=[8], lr=0.01, max_epochs=25, patience=4, batch_size=32)
CFG = ClassifyConfig(
    probes={"slp": ProbeConfig(hidden=[], lr=0.01, max_epochs=25, patience=4, batch_size=32), "mlp": PROBE},
    trials=2,
    permutations=50,
    synthetic_hidden=[8],
)


def make_world(seed: int = 0, n_tracks=(24, 8, 12), clips: int = 2, noise: float = 0.6):
    """Real splits with 2 clips per track, and one generated clip per track (a noisy reconstruction)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (4, DIM))
    real, gen_rows, gen_x = {}, [], []
    t = 0
    for split, n in zip(("train", "validation", "test"), n_tracks):
        rows, xs = [], []
        for i in range(n):
            q = i % 4
            base = centres[q] + rng.normal(0, 0.5, DIM)
            tid = f"t{t:03d}"
            t += 1
            mood = [["happy"], ["dark"], ["calm"], ["sad"]][q] + (["epic"] if i % 3 == 0 else [])
            for c in range(clips):
                rows.append(
                    {
                        "key": f"{tid}_c{c}",
                        "split": split,
                        "track_id": tid,
                        "quadrant": QUADS[q],
                        "mood": mood,
                        "style": "bach" if q < 2 else "monteverdi",
                    }
                )
                xs.append(base + rng.normal(0, noise, DIM))
            gen_rows.append({**rows[-1], "key": f"gen_{tid}"})
            gen_x.append(base + rng.normal(0, noise, DIM))
        real[split] = EmbTable(np.asarray(xs, np.float32), pl.DataFrame(rows), f"{split}.parquet")
    gen = EmbTable(np.asarray(gen_x, np.float32), pl.DataFrame(gen_rows), "gen.parquet")
    return real, gen


@pytest.fixture(scope="module")
def world():
    real, gen = make_world()
    td = prepare_task(real, "quadrant", CFG)
    return real, gen, td, run_baseline(td, CFG)


def test_track_level_means_clip_scores():
    ids, y, p = track_level(
        np.array(["b", "a", "b"]), np.array([[0, 1], [1, 0], [0, 1]]), np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]])
    )
    assert ids.tolist() == ["a", "b"]
    assert y.tolist() == [[1, 0], [0, 1]]
    assert np.allclose(p, [[0.9, 0.1], [0.3, 0.7]])


def test_frechet_distance_matches_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 1.0])
    a = rng.normal(mu1, np.sqrt(s1), (40000, 3))
    b = rng.normal(mu2, np.sqrt(s2), (40000, 3))
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(a, b) == pytest.approx(closed, rel=0.03)
    assert abs(frechet_distance(a, a)) < 1e-6
    with pytest.raises(InputError, match=">= 2 rows"):
        frechet_distance(a[:1], b)


def test_baseline_above_chance_deterministic_with_references(world):
    real, _, td, base = world
    s = base["summary"]
    assert s["roc_auc_macro_mean"] > 0.9 and s["f1_macro_mean"] > 0.6
    assert base["references"]["majority"]["roc_auc_macro"] == pytest.approx(0.5)
    perm = base["permutation"]  # one test per seed (seeds 0, 1), and how many of them reject
    assert set(perm["per_seed"]) == {"0", "1"} and perm["n_permutations"] == 50
    assert perm["p_value_max"] <= 2 / 51 and perm["n_significant"] == perm["n_trials"] == 2
    rows = base["test_confusion"]  # one (track, actual, predicted) row per test track, trial 0
    assert len(rows) == 12 and {r[1] for r in rows} == set(QUADS)
    assert {r[2] for r in rows} <= set(QUADS) and sum(a == p for _, a, p in rows) >= 8
    assert base["counts"]["test_tracks"] == 12 and base["counts"]["test_rows"] == 24
    again = run_baseline(prepare_task(real, "quadrant", CFG), CFG)
    assert again["summary"] == s and again["permutation"] == base["permutation"]
    assert len(base["models"]) == 2 and set(base["per_class"]) == set(QUADS)


def test_augmented_draws_train_sources_equal_per_class(world):
    _, gen, td, base = world
    g = generated_data(gen, td, CFG)
    idx, counts = draw_augmentation(g, 48, 4, 0.25, seed=0)
    assert counts == {"wanted": 12, "drawn": 12, "short": 0}
    assert set(g.splits[idx]) == {"train"}
    assert (g.y[idx].sum(axis=0) == 3).all()
    aug = run_augmented(td, gen, base, CFG)
    assert set(aug["delta"]) >= {"f1_macro_abs", "f1_macro_rel", "f1_macro_flag", "f1_macro_rel_std"}
    # the std is over seed-paired deltas (trial t of both runs uses seed t)
    b, a = base["trials"], aug["trials"]
    rel = [(a[t]["roc_auc_macro"] - b[t]["roc_auc_macro"]) / b[t]["roc_auc_macro"] for t in range(2)]
    assert aug["delta"]["roc_auc_macro_rel_std"] == pytest.approx(np.std(rel, ddof=1))
    assert aug["delta"]["roc_auc_macro_trials_better"] == sum(r > 0 for r in rel)
    assert aug["counts"]["drawn"] == 4  # 5 % of 48 rows = 2.4 -> 1 per class
    assert set(aug["per_class_delta"]) == set(QUADS)


def test_augmentation_share_does_not_grow_with_the_generated_artifact(world):
    """The seed protocol's 5 %: augmented adds augment_fraction x real training rows whatever the artifact holds
    (generate.compose.fraction makes compose's artifact 5x the 5 % budget); the draw is seeded per trial."""
    _, gen, td, base = world
    big = EmbTable(
        np.concatenate([gen.x] * 5),
        pl.concat([gen.meta.with_columns(pl.col("key") + f"_{i}") for i in range(5)]),
        "big.parquet",
    )
    g_small, g_big = generated_data(gen, td, CFG), generated_data(big, td, CFG)
    assert len(g_big) == 5 * len(g_small)
    n_train = len(td.train)
    for g in (g_small, g_big):
        idx, counts = draw_augmentation(g, n_train, 4, 0.05, seed=0)
        assert counts["drawn"] == counts["wanted"] == 4 * max(1, round(0.05 * n_train / 4))
        assert np.array_equal(idx, draw_augmentation(g, n_train, 4, 0.05, seed=0)[0])
    aug = run_augmented(td, big, base, CFG)
    assert aug["counts"]["drawn"] == run_augmented(td, gen, base, CFG)["counts"]["drawn"] == 4
    assert aug["counts"]["generated_rows"] == len(g_big)


def test_generated_classified_both_variants(world, tmp_path):
    _, gen, td, base = world
    res = run_generated_classified(td, gen, base, CFG)
    seen, unseen = res["source_in_training"], res["source_unseen"]
    assert seen["n"] == 24 and unseen["n"] == 12 + 20  # 12 held-out train sources + 8 val + 12 test tracks
    assert np.allclose(np.asarray(seen["normalized"]).sum(axis=1), 1.0)
    assert seen["accuracy"] > 0.5
    # mean and std over the trials: each seed's baseline model, and a model per seed without its own held-out draw
    assert set(seen["summary"]) == set(unseen["summary"]) == {"accuracy_mean", "accuracy_std"}
    assert 0 < unseen["summary"]["accuracy_mean"] <= 1 and unseen["summary"]["accuracy_std"] >= 0
    paths = write_confusion(tmp_path, "conf", seen, "resynth")
    assert paths[0].read_text().splitlines()[0] == "actual,predicted" and len(paths[0].read_text().splitlines()) == 25
    assert paths[2].stat().st_size > 1000
    # Clips made from no track (compose): nothing to hold out, every clip counts as source-unseen.
    train_only = gen.meta["split"].to_numpy() == "train"
    meta = gen.meta.filter(pl.col("split") == "train").with_columns(pl.lit(None, dtype=pl.String).alias("track_id"))
    res = run_generated_classified(td, EmbTable(gen.x[train_only], meta, "c"), base, CFG)
    assert res["source_unseen"]["n"] == 24 and res["counts"]["heldout_tracks"] == 0


def test_synthetic_only_and_fad(world):
    _, gen, td, _ = world
    syn = run_synthetic_only(td, gen, CFG)
    assert syn["counts"]["train_rows"] == 24 and syn["counts"]["validation_rows"] == 8
    assert syn["summary"]["roc_auc_macro_mean"] > 0.7
    assert syn["permutation"]["n_trials"] == 2 and syn["permutation"]["n_significant"] == 2
    train_only = gen.meta["split"].to_numpy() == "train"  # generators usually use training tracks only
    gen_train = EmbTable(gen.x[train_only], gen.meta.filter(pl.col("split") == "train"), "gen.parquet")
    syn2 = run_synthetic_only(td, gen_train, CFG)
    assert syn2["counts"]["train_rows"] == 19 and syn2["counts"]["validation_rows"] == 5  # 20 % of 24 sources
    # A composer's clips come from no track: each clip is its own unit of the held-out share.
    sourceless = EmbTable(
        gen_train.x, gen_train.meta.with_columns(pl.lit(None, dtype=pl.String).alias("track_id")), "c"
    )
    syn3 = run_synthetic_only(td, sourceless, CFG)
    assert syn3["counts"]["train_rows"] == 19 and syn3["counts"]["validation_rows"] == 5  # 20 % of 24 clips
    fad = run_fad(td, gen, CFG)
    assert fad["overall"]["n_generated"] == 44 and fad["overall"]["n_real"] == 48
    assert fad["per_class"]["activated_pleasant"]["n_real"] == 12 and fad["overall"]["fd"] >= 0


def test_robustness_drop(world):
    real, _, td, base = world
    noisy = real["test"]
    rng = np.random.default_rng(1)
    scen = {
        "noise": EmbTable(noisy.x + rng.normal(0, 4.0, noisy.x.shape).astype(np.float32), noisy.meta, "n"),
        "same": noisy,
    }
    rob = run_robustness(td, scen, CFG, baseline=base)
    assert set(rob) == {"mlp", "slp"}
    assert rob["mlp"]["same"]["roc_auc_macro_drop"] == pytest.approx(0.0)
    assert rob["mlp"]["noise"]["roc_auc_macro_drop"] > 0.05
    assert rob["mlp"]["same"]["roc_auc_macro_drop_std"] == 0.0 and rob["mlp"]["noise"]["roc_auc_macro_drop_std"] > 0


def test_multilabel_mood_thresholds_from_validation():
    real, _ = make_world(1)
    td = prepare_task(real, "mood", CFG)
    assert td.multilabel and td.classes == ["calm", "dark", "epic", "happy", "sad"]
    base = run_baseline(td, CFG)
    assert base["models"][0].thresholds is not None and base["models"][0].thresholds.shape == (5,)
    assert base["summary"]["roc_auc_macro_mean"] > 0.7
    # mood's confusion rows are tag sets, true vs thresholded (no primary tag to set against an argmax)
    rows = base["test_confusion"]
    assert len(rows) == 12 and {r[1] for r in rows} >= {"happy", "dark+epic", "calm", "sad"}
    assert all(p == "none" or set(p.split("+")) <= set(td.classes) for _, _, p in rows)


def test_bad_input_is_named():
    real, _ = make_world(2)
    with pytest.raises(InputError, match="task 'genre': column 'genre' missing"):
        prepare_task(real, "genre", CFG)
    meta = real["test"].meta.with_columns(pl.lit("new_quadrant").alias("quadrant"))
    bad = dict(real, test=EmbTable(real["test"].x, meta, "test.parquet"))
    with pytest.raises(InputError, match="'new_quadrant' has no training examples"):
        prepare_task(bad, "quadrant", CFG)
    from dataclasses import replace

    td = prepare_task(bad, "quadrant", replace(CFG, missing_class="skip"))
    assert len(td.test) == 0 and td.test.dropped == 24
    empty = EmbTable(np.zeros((0, DIM), np.float32), real["train"].meta.head(0), "gen.parquet")
    with pytest.raises(InputError, match="gen.parquet: generated artifact is empty"):
        generated_data(empty, prepare_task(real, "quadrant", CFG), CFG)


def test_report_table_marks_gains_and_metrics_are_numbers(tmp_path):
    keys = ("f1_macro", "f1_micro", "pr_auc_macro", "pr_auc_micro", "roc_auc_macro", "roc_auc_micro")
    base = {f"{k}_{s}": 0.5 if s == "mean" else 0.01 for k in keys for s in ("mean", "std")}
    aug = dict(base, f1_macro_mean=0.506, f1_micro_mean=0.504)
    md = results_table("quadrant", "logmel", base, {"resynth": aug})
    row = [line for line in md.splitlines() if line.startswith("| real + resynth")][0]
    assert "**0.506 ± 0.010**" in row and "0.504 ± 0.010" in row and "**0.504" not in row
    flat = numbers_only({"a": {"b": 1.23456789, "c": float("nan"), "d": "text", "e": True}})
    assert flat == {"a": {"b": 1.234568, "e": 1}}
    json.dumps(flat, allow_nan=False)
    p = write_delta_plot(tmp_path / "d.png", {"x": {"f1": 0.1, "roc_auc": -0.05}, "y": {"f1": 0, "roc_auc": 0}}, "t")
    assert p.stat().st_size > 1000


def test_macro_auc_permutations_matches_sklearn():
    """Rank AUC = scikit-learn's roc_auc_score (ties included); the null is centred on 0.5, the p-value small."""
    from sklearn.metrics import roc_auc_score

    from mgdata.classify.experiments import macro_auc_permutations

    rng = np.random.default_rng(0)
    y = np.eye(3)[rng.integers(0, 3, 40)]
    y[:, 2] = 0  # a class without positives is left out, as in the MediaEval metrics
    scores = np.round(y + rng.normal(scale=0.8, size=y.shape), 1)  # rounding makes ties
    observed, null = macro_auc_permutations(y, scores, 200, seed=1)
    expected = np.mean([roc_auc_score(y[:, j], scores[:, j]) for j in (0, 1)])
    assert observed == pytest.approx(expected, abs=1e-12)
    same = np.random.default_rng(1)  # the function's permutation stream
    for i, perm in enumerate(same.permutation(40) for _ in range(3)):
        assert null[i] == pytest.approx(np.mean([roc_auc_score(y[perm, j], scores[:, j]) for j in (0, 1)]), abs=1e-12)
    assert abs(null.mean() - 0.5) < 0.05 and (null >= observed).sum() == 0

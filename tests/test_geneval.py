"""Generator evaluation: pool and subsets, the controls, the paired tests, and a whole run on a synthetic world."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mgdata.classify.data import Data
from mgdata.errors import ParamsError
from mgdata.geneval.config import GenevalConfig
from mgdata.geneval.sources import carve, draw_rows, shuffled_labels
from mgdata.geneval.stats import auc_macro, f1_macro, paired_gain

CLASSES = ["activated_pleasant", "activated_unpleasant", "deactivated_pleasant", "deactivated_unpleasant"]


def _data(n_tracks: int, clips: int = 3, seed: int = 0, split: str = "train") -> Data:
    rng = np.random.default_rng(seed)
    tracks = np.repeat([f"{split}{i:03d}" for i in range(n_tracks)], clips).astype(object)
    cls = np.repeat(np.arange(n_tracks) % 4, clips)
    return Data(
        rng.normal(size=(tracks.size, 5)),
        np.eye(4, dtype=np.int64)[cls],
        tracks,
        tracks.copy(),
        np.full(tracks.size, split, dtype=object),
    )


def test_pool_and_nested_subsets_are_stratified_disjoint_and_seeded():
    train = _data(80)
    a = carve(train, [0.1, 0.5, 1.0], 0.25, seed=3)
    assert a == carve(train, [0.1, 0.5, 1.0], 0.25, seed=3) and a != carve(train, [0.1, 0.5, 1.0], 0.25, seed=4)
    assert len(a.pool) == 20 and not a.pool & a.subsets[1.0]
    assert a.subsets[0.1] < a.subsets[0.5] < a.subsets[1.0] and len(a.subsets[1.0]) == 60
    per_class = {c: sum(int(t[5:]) % 4 == c for t in a.subsets[0.1]) for c in range(4)}
    assert per_class == {0: 2, 1: 2, 2: 2, 3: 2}  # ceil(0.1 * 15) of each class


def test_shuffled_control_keeps_the_clips_and_moves_whole_track_labels():
    pool = _data(40)
    shuffled = shuffled_labels(pool, seed=1)
    assert np.array_equal(shuffled.x, pool.x) and sorted(map(tuple, shuffled.y)) == sorted(map(tuple, pool.y))
    for t in np.unique(pool.tracks):
        rows = shuffled.y[pool.tracks == t]
        assert (rows == rows[0]).all()  # every clip of a track keeps one (moved) label
    assert (shuffled.y != pool.y).any(axis=1).mean() > 0.5


def test_draw_is_class_balanced_and_short_sources_say_so():
    rows, counts = draw_rows(_data(8), 40, 4, seed=0)  # 8 tracks x 3 clips: 6 rows per class available
    assert counts == {"wanted": 40, "drawn": 24} and (rows.y.sum(0) == 6).all()


def test_metrics_match_scikit_learn_and_the_paired_test_finds_only_real_gains():
    from sklearn.metrics import f1_score, roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 60)
    y = np.eye(4, dtype=np.int64)[labels]
    p = rng.random((60, 4))
    assert auc_macro(y, p) == pytest.approx(roc_auc_score(y, p, average="macro"))
    assert f1_macro(y, p) == pytest.approx(f1_score(labels, p.argmax(1), average="macro", zero_division=0))
    base = rng.random((3, 60, 4))
    better = paired_gain(y, base, base + 0.4 * y, permutations=500, bootstrap=500, seed=0)
    assert better["p_roc_auc_macro"] < 0.01 and better["ci_low_roc_auc_macro"] > 0 and better["mde_roc_auc_macro"] > 0
    same = paired_gain(y, base, rng.random((3, 60, 4)), permutations=500, bootstrap=500, seed=0)
    assert same["p_roc_auc_macro"] > 0.05 and same["ci_low_roc_auc_macro"] < 0 < same["ci_high_roc_auc_macro"]


def test_config_errors_name_the_key():
    from mgdata.config import from_dict

    with pytest.raises(ParamsError, match=r"geneval\.fractions"):
        from_dict(GenevalConfig, {"fractions": [0.5, 0.1]}, "geneval")
    with pytest.raises(ParamsError, match=r"geneval\.generators"):
        from_dict(GenevalConfig, {"generators": ["oracle"]}, "geneval")


def _table(root: Path, split: str, x: np.ndarray, tracks, labels, splits) -> None:
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / f"{split}.npy", x.astype(np.float32))
    pl.DataFrame(
        {
            "key": [f"{t}-{i}" for i, t in enumerate(tracks)],
            "track_id": list(tracks),
            "split": list(splits),
            "quadrant": list(labels),
        }
    ).write_parquet(root / f"{split}.parquet")


def _world(root: Path) -> None:
    """Class centroids in 8 dims, one clip per row; the generator copies train clips with more noise."""
    rng = np.random.default_rng(0)
    centroids = rng.normal(size=(4, 8)) * 1.2

    def rows(split: str, n_tracks: int, clips: int = 4):
        tracks = [f"{split[:2]}{i:03d}" for i in range(n_tracks) for _ in range(clips)]
        cls = [i % 4 for i in range(n_tracks) for _ in range(clips)]
        x = centroids[cls] + rng.normal(size=(len(cls), 8)) * 2.0
        return x, tracks, [CLASSES[c] for c in cls]

    for split, n in (("train", 120), ("validation", 20), ("test", 40)):
        x, tracks, labels = rows(split, n)
        _table(root / "emb" / "corpus" / "clean", split, x, tracks, labels, [split] * len(tracks))
        if split == "train":
            _table(
                root / "emb" / "copier" / "clean",
                "train",
                x[::2] + rng.normal(size=x[::2].shape),
                tracks[::2],
                labels[::2],
                ["train"] * len(tracks[::2]),
            )


def test_a_whole_run_shows_the_oracle_helping_and_is_the_same_for_any_executor(tmp_path):
    from mgdata.exec import ExecConfig
    from mgdata.geneval.build import build_geneval

    _world(tmp_path)
    cfg = GenevalConfig(
        tasks=["quadrant"],
        embedder="emb",
        generators=["copier"],
        fractions=[0.1, 1.0],
        ratios=[1.0],
        trials=2,
        permutations=200,
        bootstrap=200,
    )
    digests = []
    for name, exe in (("serial", ExecConfig(backend="serial")), ("process", ExecConfig(workers=2))):
        res = build_geneval(tmp_path, tmp_path / name, cfg=cfg, task="quadrant", executor=exe, progress=False)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / name).iterdir()})
    assert digests[0] == digests[1] and set(digests[0]) == {"results.json", "curves.csv", "leaderboard.md"}
    m = res.metrics
    assert m["gain_oracle_f10_r1_roc_auc_macro"] > 0.02 and m["gain_oracle_f10_r1_p"] < 0.05
    assert m["gain_oracle_shuffled_f10_r1_roc_auc_macro"] < m["gain_oracle_f10_r1_roc_auc_macro"]
    assert m["novelty_copier"] > m["novelty_oracle"]  # copies of training clips sit nearer the training set
    assert {"synthetic_only_copier_f1_macro", "synthetic_only_copier_p", "mde_f10_roc_auc_macro"} <= set(m)
    assert "| oracle_shuffled |" in res.leaderboard_md


def test_novelty_can_come_from_another_embedder_of_the_same_tracks(tmp_path):
    import shutil

    from mgdata.geneval.build import build_geneval

    _world(tmp_path)
    shutil.copytree(tmp_path / "emb", tmp_path / "feat")  # the same clips, "embedded" by another embedder
    cfg = GenevalConfig(
        tasks=["quadrant"],
        embedder="emb",
        generators=["copier"],
        fractions=[0.5],
        ratios=[1.0],
        trials=2,
        permutations=100,
        bootstrap=100,
    )
    same = build_geneval(tmp_path, cfg=cfg, task="quadrant", progress=False)
    other = build_geneval(
        tmp_path, cfg=GenevalConfig(**{**cfg.__dict__, "novelty_embedder": "feat"}), task="quadrant", progress=False
    )
    assert other.details["novelty_embedder"] == "feat" and same.details["novelty_embedder"] == "emb"
    assert other.metrics["novelty_copier"] == same.metrics["novelty_copier"] > 1.0
    shutil.rmtree(tmp_path / "feat" / "copier")
    with pytest.raises(Exception, match="feat/copier"):
        build_geneval(tmp_path, cfg=GenevalConfig(**{**cfg.__dict__, "novelty_embedder": "feat"}), task="quadrant")

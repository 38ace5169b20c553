"""Are the default world's labels audible? A logistic probe on the embedding tables, per label, vs chance.

Reads ``data/embed/<embedder>/corpus/clean/{train,test}.{npy,parquet}`` and the manifest (``tempo_class`` =
arousal), averages the clip rows of each track (``embed.clip_s``) into one track vector, fits a standardised logistic regression on train (C fixed at 1.0: nothing is tuned,
so the test split is only used once) and prints, per label, the test balanced accuracy, chance (1 / classes) and a
permutation p-value (test labels permuted over tracks, model fixed: p = (1 + #{perm >= observed}) / (1 + N)).

    .venv/bin/python bench/probe_world.py [--embedder logmel] [--permutations 2000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load(folder: Path, split: str, manifest: pl.DataFrame) -> tuple[np.ndarray, pl.DataFrame]:
    """One row per track: the mean of its clip rows, with its labels (tracks in first-appearance order)."""
    x = np.load(folder / f"{split}.npy")
    rows = pl.read_parquet(folder / f"{split}.parquet")
    tracks, inverse = np.unique(rows["track_id"].to_numpy().astype(str), return_inverse=True)
    sums = np.zeros((tracks.size, x.shape[1]))
    np.add.at(sums, inverse, x)
    x_track = sums / np.bincount(inverse)[:, None]
    meta = (
        rows.unique("track_id", keep="first", maintain_order=True)
        .join(manifest.select("track_id", "tempo_class"), on="track_id", how="left")
        .sort("track_id")
    )
    assert meta["track_id"].to_list() == tracks.tolist()
    return x_track, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="logmel")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--permutations", type=int, default=2000)
    args = ap.parse_args()
    folder = args.data / "embed" / args.embedder / "corpus" / "clean"
    manifest = pl.read_parquet(args.data / "corpus" / "manifest.parquet")
    x_tr, m_tr = load(folder, "train", manifest)
    x_te, m_te = load(folder, "test", manifest)
    rng = np.random.default_rng(0)
    print(f"{args.embedder}: {len(m_tr)} train / {len(m_te)} test tracks, dim {x_tr.shape[1]}")
    print(f"{'label':<10} {'classes':>7} {'bal.acc':>8} {'chance':>7} {'perm p':>8}")
    for label in ("tempo_class", "quadrant", "style"):
        y_tr, y_te = m_tr[label].to_numpy(), m_te[label].to_numpy()
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
        model.fit(x_tr, y_tr)
        pred = model.predict(x_te)
        observed = balanced_accuracy_score(y_te, pred)
        hits = sum(balanced_accuracy_score(rng.permutation(y_te), pred) >= observed for _ in range(args.permutations))
        p = (1 + hits) / (1 + args.permutations)
        n_classes = len(set(y_tr))
        name = "arousal" if label == "tempo_class" else label
        print(f"{name:<10} {n_classes:>7} {observed:>8.3f} {1 / n_classes:>7.3f} {p:>8.4f}")


if __name__ == "__main__":
    main()

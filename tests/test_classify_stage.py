"""The classify stage end to end (through stage_main) on tiny embedding tables written like the embed stage's."""

import json
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_classify_experiments import make_world  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _write(folder: Path, table, split: str | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    meta = table.meta
    splits = [split] if split else sorted(set(meta["split"].to_list()))
    for s in splits:
        idx = np.flatnonzero(np.asarray(meta["split"].to_list()) == s)
        np.save(folder / f"{s}.npy", table.x[idx])
        meta[idx.tolist()].write_parquet(folder / f"{s}.parquet")


def test_stage_runs_every_experiment(tmp_path):
    real, gen = make_world(3)
    emb = tmp_path / "embed" / "logmel"
    for s, t in real.items():
        _write(emb / "corpus" / "clean", t, s)
    (emb / "corpus" / "clean" / "artifact.json").write_text(
        json.dumps(
            {"embed": {"embedder": {"id": "logmel", "settings": {}}, "windowing": {"window_s": 2.0, "hop_s": 1.0}}}
        )
    )
    rng = np.random.default_rng(0)
    noisy = type(real["test"])(
        real["test"].x + rng.normal(0, 2, real["test"].x.shape).astype(np.float32), real["test"].meta, "noisy"
    )
    _write(emb / "corpus" / "noise_snr20", noisy, "test")
    _write(emb / "resynth" / "clean", gen)
    params = {
        "classify": {
            "generators": ["resynth"],
            "embedders": ["logmel"],
            "scenarios": ["noise_snr20"],
            "trials": 2,
            "permutations": 20,
            "synthetic_hidden": [8],
            "probes": {
                "slp": {"hidden": [], "lr": 0.01, "max_epochs": 20, "patience": 3},
                "mlp": {"hidden": [8], "lr": 0.01, "max_epochs": 20, "patience": 3},
            },
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    from mgdata.pipeline import stage_main

    argv = [
        "--params",
        str(tmp_path / "params.yaml"),
        "--task",
        "quadrant",
        "--embedder",
        "logmel",
        "--embed-root",
        str(tmp_path / "embed"),
        "--out-root",
        str(tmp_path / "out"),
        "--plots-dir",
        str(tmp_path / "plots"),
        "--metrics",
        str(tmp_path / "metrics" / "quadrant-logmel.json"),
        "--report",
        str(tmp_path / "report.json"),
        "--no-progress",
    ]
    assert stage_main("classify", argv) == 0
    flat = json.loads((tmp_path / "metrics" / "quadrant-logmel.json").read_text())
    assert all(isinstance(v, (int, float)) for v in flat.values())  # headline numbers, flat
    assert flat["baseline_roc_auc_macro"] > 0.8 and 0 < flat["baseline_perm_p_max"] <= 1
    # the headline: each figure that is a mean over seeds beside its _std; the rest is in the stage report
    assert set(flat) == {
        "baseline_roc_auc_macro",
        "baseline_roc_auc_macro_std",
        "baseline_f1_macro",
        "baseline_f1_macro_std",
        "baseline_perm_p_max",
        "augmented_resynth_f1_macro_rel",
        "augmented_resynth_f1_macro_rel_std",
        "augmented_resynth_roc_auc_macro_rel",
        "augmented_resynth_roc_auc_macro_rel_std",
        "generated_resynth_acc_source_unseen",
        "generated_resynth_acc_source_unseen_std",
        "synthetic_only_resynth_roc_auc_macro",
        "synthetic_only_resynth_roc_auc_macro_std",
        "fad_resynth",
        "skipped",
    }
    m = json.loads((tmp_path / "report.json").read_text())["experiments"]
    assert m["baseline"]["summary"]["roc_auc_macro_mean"] == flat["baseline_roc_auc_macro"]
    assert "f1_macro_rel" in m["augmented@resynth"]["delta"]
    assert m["robustness"]["mlp"]["noise_snr20"]["roc_auc_macro_drop"] > 0
    # the significance test runs per seed; the report counts the seeds that agree
    perm = m["baseline"]["permutation"]
    assert set(perm["per_seed"]) == {"0", "1"} and perm["n_trials"] == 2 and 0 <= perm["n_significant"] <= 2
    assert m["synthetic_only@resynth"]["permutation"]["n_trials"] == 2
    assert {"generated_classified@resynth", "synthetic_only@resynth", "fad@resynth"} <= set(m)
    out = tmp_path / "out" / "quadrant-logmel"
    assert (out / "baseline" / "model" / "model.safetensors").exists()
    assert json.loads((out / "baseline" / "model" / "probe.json").read_text())["windowing"]["window_s"] == 2.0
    assert (out / "generated_classified@resynth" / "confusion_source_in_training.png").exists()
    assert (out / "augmented@resynth" / "per_class_delta.png").exists()
    md = (out / "results.md").read_text()
    assert "| real + resynth |" in md and "p = " in md and f"{perm['n_significant']} of 2 seeds p < 0.05" in md
    assert (tmp_path / "plots" / "quadrant-logmel.md").read_text() == md
    rows = (tmp_path / "plots" / "confusion" / "quadrant-logmel.csv").read_text().splitlines()
    assert rows[0] == "track,actual,predicted" and len(rows) == 1 + 12  # one row per test track
    assert rows == (out / "baseline" / "confusion_test.csv").read_text().splitlines()
    # determinism: a rerun writes byte-identical metrics and weights
    first = (
        (tmp_path / "metrics" / "quadrant-logmel.json").read_bytes(),
        (out / "baseline" / "model" / "model.safetensors").read_bytes(),
    )
    assert stage_main("classify", argv) == 0
    assert first == (
        (tmp_path / "metrics" / "quadrant-logmel.json").read_bytes(),
        (out / "baseline" / "model" / "model.safetensors").read_bytes(),
    )


def test_builder_in_memory_writes_nothing_and_matches_a_folder_run(tmp_path):
    """``build_classify(out_dir=None)`` runs every experiment in memory: same metrics and results.md text."""
    from mgdata.classify.build import build_classify
    from mgdata.classify.config import ClassifyConfig, ProbeConfig
    from mgdata.classify.stage import headline  # re-exported from build

    real, gen = make_world(3, n_tracks=(16, 8, 8))
    emb = tmp_path / "embed" / "logmel"
    for s, t in real.items():
        _write(emb / "corpus" / "clean", t, s)
    _write(emb / "resynth" / "clean", gen)
    (emb / "corpus" / "clean" / "artifact.json").write_text(json.dumps({"embed": {"embedder": {"id": "logmel"}}}))
    probe = ProbeConfig(hidden=[], lr=0.01, max_epochs=10, patience=3)
    cfg = ClassifyConfig(
        generators=["resynth"],
        scenarios=[],
        trials=1,
        permutations=10,
        synthetic_hidden=[8],
        probes={"slp": probe},
        probe="slp",
    )
    before = sorted(p for p in tmp_path.rglob("*"))
    mem = build_classify(tmp_path / "embed", cfg=cfg, task="quadrant", embedder="logmel", progress=False)
    assert sorted(p for p in tmp_path.rglob("*")) == before and mem.out_dir is None
    disk = build_classify(tmp_path / "embed", tmp_path / "out", cfg=cfg, task="quadrant", embedder="logmel")
    assert json.dumps(mem.metrics, sort_keys=True) == json.dumps(disk.metrics, sort_keys=True)
    assert mem.results_md == (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert headline(mem.metrics, cfg) == headline(disk.metrics, cfg)

"""tools/decision_grid.py: two fake configurations of a project folder -> one sorted, deterministic CSV/markdown."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def grid():
    spec = importlib.util.spec_from_file_location("decision_grid", ROOT / "tools" / "decision_grid.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BASELINES = ("random", "most_frequent", "cond_argmax", "cond_sample", "context", "model_shuffled_a")


def _write_config(root: Path, seg: str, k: int, tpp: float) -> None:
    name = f"chroma_stft-s{seg}-k{k}"
    agg = {
        "free_tpp_model": tpp,
        "free_tpp_model_std": 0.5,
        "free_tpp_model_greedy": tpp,
        "free_lcp_mean_model": 0.56,
        "free_lcp_mean_model_std": 0.01,
        "constrained_tpp_model": 2 * tpp,
        "constrained_tpp_model_std": 0.2,
        "constrained_tpp_random": 10.0,
        "free_p_vs_random": 1e-10,
        "free_p_vs_random_agree": 3,
        "free_perm_p_vs_cond_argmax": 0.03,
        "free_perm_p_vs_cond_argmax_agree": 3,
        "free_perm_p_vs_context": 0.45,
        "free_perm_p_vs_context_agree": 1,
        "constrained_p_vs_random": 2e-8,
        "constrained_p_vs_random_agree": 3,
        "best_val_loss": 2.25,
        "epochs": 7.0,
        **{f"free_tpp_{b}": float(i) for i, b in enumerate(BASELINES)},
    }
    report = {
        **agg,
        "stage": f"decision/{name}",
        "test_tracks": 46,
        "test_pairs": 1028,
        "results": {
            "free": {"lcp_mean": {b: 0.1 * i for i, b in enumerate(BASELINES)}},
            "trials": {"aggregate": agg, "first_seed": 0, "n": 3, "per_seed": {}},
        },
    }
    for sub, obj in (("stage_reports", report), ("metrics", {"free_tpp_model": tpp, "skipped": 0})):
        d = root / sub / "decision"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.json").write_text(json.dumps(obj))


LOG = """START 2026-12-05T17:55:21Z
2026-12-05T17:55:29Z Running stage 'tokens@0.5-64':
2026-12-05T17:55:40Z Updating lock file 'dvc.lock'
2026-12-05T17:56:00Z Running stage 'decision@0.5-64':
2026-12-05T17:58:00Z some progress line
2026-12-05T17:59:30Z Updating lock file 'dvc.lock'
END 2026-12-05T18:00:00Z rc=0 wall_s=279
"""


def test_collects_two_configurations_sorted_and_deterministic(grid, tmp_path):
    proj = tmp_path / "proj"
    _write_config(proj, "0.5", 64, 10.7)  # written first, sorts last
    _write_config(proj, "0.25", 16, 18.6)
    log = tmp_path / "grid.log"
    log.write_text(LOG)
    out = tmp_path / "docs"
    assert grid.main(["--project", str(proj), "--log", str(log), "--out-dir", str(out)]) == 0
    rows = list(csv.DictReader((out / "decision_grid.csv").open()))
    assert [(r["segment_s"], r["k"]) for r in rows] == [("0.25", "16"), ("0.5", "64")]
    r = rows[1]
    assert r["seeds"] == "0 1 2"
    assert r["free_tpp_model"] == "10.70" and r["free_tpp_model_std"] == "0.50"
    assert r["free_tpp_cond_argmax"] == "2.00" and r["free_tpp_model_shuffled_a"] == "5.00"
    assert r["free_lcp_model"] == "0.560" and r["free_lcp_context"] == "0.400"
    assert r["constrained_tpp_model"] == "21.40" and r["constrained_tpp_random"] == "10.00"
    assert r["free_p_vs_random"] == "1.00e-10" and r["free_perm_p_vs_context_agree"] == "1"
    assert r["tokens_wall_s"] == "11" and r["decision_wall_s"] == "210"
    assert rows[0]["decision_wall_s"] == ""  # not in the log: left empty, not guessed
    md = (out / "decision_grid.md").read_text()
    assert "| 0.5 | 64 | 0 1 2 | 10.70 ± 0.50 |" in md
    # Every table line has as many cells as the header (no stray '|' inside a cell).
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1
    first = ((out / "decision_grid.csv").read_bytes(), md)
    assert grid.main(["--project", str(proj), "--log", str(log), "--out-dir", str(out)]) == 0
    assert ((out / "decision_grid.csv").read_bytes(), (out / "decision_grid.md").read_text()) == first
    assert grid.log_wall(LOG) == 279.0


def test_empty_project_fails(grid, tmp_path):
    assert grid.main(["--project", str(tmp_path), "--out-dir", str(tmp_path / "docs")]) == 1


def test_report_shows_the_grid_table(tmp_path):
    from mgdata.htmlreport import build_report

    (tmp_path / "data").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/decision_grid.md").write_text("# grid\n\n| segment_s | K |\n|---|---|\n| 0.25 | 256 |\n")
    res = build_report(tmp_path, tmp_path / "reports")
    html = res.index.read_text()
    assert "docs/decision_grid.md" in html and "<td>256</td>" in html


def test_stage_times_without_a_lock_line_between_stages(grid):
    log = (
        "2026-12-05T18:19:55Z Running stage 'decision@0.5-16':\n"
        "2026-12-05T18:20:34Z Running stage 'decision@0.50-64':\n"
        "2026-12-05T18:21:40Z Updating lock file 'dvc.lock'\n"
    )
    assert grid.stage_times(log) == {"decision@0.5-16": 39.0, "decision@0.5-64": 66.0}
    assert (
        grid.stage_times(
            log.replace("2026-12-05T18:21:40Z Updating lock file 'dvc.lock'", "END 2026-12-05T18:21:40Z rc=0")
        )["decision@0.5-64"]
        == 66.0
    )


def test_grid_columns_follow_the_decision_baselines(grid):
    """The tool keeps its own (stdlib-only) list of baselines: it must name every one the stage evaluates."""
    from mgdata.decision.evaluate import BASELINES as EVALUATED

    assert grid.BASELINES == EVALUATED

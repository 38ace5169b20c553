"""`dvc plots show` draws every plot the classify stages declare: a tiny DVC project holding the real dvc.yaml's
classify stage, whose outputs the classify builder writes from small synthesized embeddings."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_classify_experiments import make_world  # noqa: E402
from test_classify_stage import _write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).parent / "dvc"
TASKS = ["quadrant", "mood"]  # a single-label task and the multi-label one (tag-set confusion)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A DVC project (no git) with the classify stage of the real dvc.yaml and the outputs of both tasks."""
    if not DVC.exists():
        pytest.skip(f"{DVC} not installed")
    root = tmp_path_factory.mktemp("dvcproj")
    real, gen = make_world(4)
    emb = root / "data" / "embed" / "logmel"
    for s, t in real.items():
        _write(emb / "corpus" / "clean", t, s)
    (emb / "corpus" / "clean" / "artifact.json").write_text(json.dumps({"embed": {"embedder": {"id": "logmel"}}}))
    _write(emb / "resynth" / "clean", gen)
    params = {
        "classify": {
            "tasks": TASKS,
            "embedders": ["logmel"],
            "generators": ["resynth"],
            "scenarios": [],
            "trials": 2,
            "permutations": 20,
            "synthetic_hidden": [8],
            "probes": {
                "slp": {"hidden": [], "lr": 0.01, "max_epochs": 15, "patience": 3},
                "mlp": {"hidden": [8], "lr": 0.01, "max_epochs": 15, "patience": 3},
            },
        }
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    mine = {"stages": {"classify": dvc_yaml["stages"]["classify"]}}
    if "plots" in dvc_yaml:  # top-level plots, if any, are checked too
        mine["plots"] = dvc_yaml["plots"]
    (root / "dvc.yaml").write_text(yaml.safe_dump(mine, sort_keys=False))
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=root, check=True)
    from mgdata.pipeline import stage_main

    for task in TASKS:  # the stage's default paths, under the project
        argv = ["--params", str(root / "params.yaml"), "--task", task, "--embedder", "logmel", "--no-progress"]
        argv += ["--embed-root", str(root / "data/embed"), "--out-root", str(root / "data/classify")]
        argv += ["--plots-dir", str(root / "plots/classify"), "--metrics", str(root / f"metrics/{task}.json")]
        assert stage_main("classify", argv) == 0
    return root


def _plots_show(root: Path) -> dict:
    out = subprocess.run(
        [str(DVC), "plots", "show", "--json"], cwd=root, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout)


def test_dvc_plots_show_draws_every_declared_classify_plot(project):
    shown = _plots_show(project)
    assert shown.get("errors", []) == []
    want = {f"plots/classify/confusion/{t}-logmel.csv" for t in TASKS}
    assert set(shown["data"]) == want
    for path in want:
        (plot,) = shown["data"][path]
        assert plot["type"] == "vega" and plot["revisions"] == ["workspace"]
        enc = plot["content"]["spec"]["encoding"]  # DVC's confusion template, actual x predicted
        assert (enc["x"]["field"], enc["y"]["field"]) == ("actual", "predicted")
    # the markdown tables stay stage outputs, not plots
    for t in TASKS:
        assert (project / f"plots/classify/{t}-logmel.md").read_text().startswith(f"### {t} (logmel)")


@pytest.mark.parametrize("task", TASKS)
def test_confusion_csv_has_one_track_per_row(project, task):
    with open(project / f"plots/classify/confusion/{task}-logmel.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"actual", "predicted"} <= set(rows[0])
    tracks = [r["track"] for r in rows]
    assert len(tracks) == len(set(tracks)) == 12  # every test track once (its clips averaged)
    if task == "quadrant":
        assert np.mean([r["actual"] == r["predicted"] for r in rows]) > 0.5
    else:  # tag sets: "+"-joined, "none" when no tag passes its threshold
        assert all(r["actual"] != "none" for r in rows) and any("+" in r["actual"] for r in rows)


def test_a_markdown_plot_is_what_dvc_refuses(project, tmp_path):
    """The check above is not vacuous: declaring the table as a plot is the error issue 16 found."""
    bad = yaml.safe_load((project / "dvc.yaml").read_text())
    bad["plots"] = [*bad.get("plots", []), "plots/classify/quadrant-logmel.md"]
    copy = tmp_path / "p"
    subprocess.run(["cp", "-r", str(project), str(copy)], check=True)
    (copy / "dvc.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    errors = _plots_show(copy).get("errors", [])
    assert [e["name"] for e in errors] == ["plots/classify/quadrant-logmel.md"]
    assert "Only JSON, YAML, CSV and TSV" in errors[0]["msg"]

"""mgdata compare: versions from DVC experiments, git revisions and folders, side by side with deltas."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mgdata.compare import compare, load_workspace, render, versions_from_exp_show

STAGE = """import json, os, yaml
p = yaml.safe_load(open("params.yaml"))
os.makedirs("metrics/classify", exist_ok=True)
json.dump({"f1_macro": p["model"]["x"] / 10, "n": {"tracks": 40}}, open("metrics/classify/q-logmel.json", "w"))
json.dump({"f1_macro": 0.5}, open("metrics/classify/style-logmel.json", "w"))
"""


def _workspace(root: Path, x: float) -> Path:
    (root / "metrics" / "classify").mkdir(parents=True)
    (root / "params.yaml").write_text(f"model:\n  x: {x}\n  y: 2\n")
    (root / "metrics/classify/q-logmel.json").write_text(json.dumps({"f1_macro": x / 10, "n": {"tracks": 40}}))
    return root


def test_two_workspaces_side_by_side(tmp_path):
    a = load_workspace(_workspace(tmp_path / "a", 5), "a")
    b = load_workspace(_workspace(tmp_path / "b", 5.2), "b")
    cmp = compare([a, b], ["classify/*/f1_macro"], threshold=0.01)
    assert cmp.metrics == ["classify/q-logmel/f1_macro"]
    assert cmp.params == ["model.x"]
    d, rel = cmp.delta("classify/q-logmel/f1_macro", 1)
    assert d == pytest.approx(0.02) and rel == pytest.approx(0.04)
    text = render(cmp)
    assert "param model.x" in text and "(+4.0%) *" in text
    assert render(cmp, "csv").splitlines()[0] == ",a,b,Δ b"
    small = compare([a, b], ["classify/*/f1_macro"], threshold=0.05)
    assert "*" not in render(small)


def test_exp_show_json_is_parsed_into_baseline_then_experiments():
    def data(x):
        return {
            "params": {"params.yaml": {"data": {"model": {"x": x}}}},
            "metrics": {"metrics/m.json": {"data": {"a": 2 * x}}},
        }

    doc = [
        {"rev": "workspace", "data": data(9)},
        {
            "rev": "abc1234",
            "name": "main",
            "data": data(1),
            "experiments": [{"name": "five", "revs": [{"rev": "e1", "name": "five", "data": data(5)}]}],
        },
    ]
    versions = versions_from_exp_show(doc)
    assert [v.name for v in versions] == ["main", "five"]
    assert versions[1].metrics == {"m/a": 10.0} and versions[1].params == {"model.x": 5}


@pytest.mark.slow
def test_compare_two_real_dvc_experiments(tmp_path):
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}

    def run(*cmd):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, text=True)

    run("git", "init", "-q")
    run("git", "config", "user.email", "t@example.org")
    run("git", "config", "user.name", "t")
    run("dvc", "init", "-q")
    (tmp_path / "stage.py").write_text(STAGE)
    (tmp_path / "params.yaml").write_text("model:\n  x: 5\n  y: 2\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: python stage.py\n    deps: [stage.py]\n    params: [model]\n"
        "    metrics:\n      - metrics/classify/q-logmel.json: {cache: false}\n"
        "      - metrics/classify/style-logmel.json: {cache: false}\n"
    )
    run("dvc", "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "base")
    run("dvc", "exp", "run", "-q", "-S", "model.x=6", "-n", "six")
    out = subprocess.run(
        [str(bin_dir / "mgdata"), "compare", "--exp", "--metrics", "classify/*/f1_macro"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["master", "six", "Δ", "six"]
    assert any(ln.startswith("param model.x") and ln.split()[2:4] == ["5", "6"] for ln in lines)
    q = next(ln for ln in lines if ln.startswith("classify/q-logmel/f1_macro"))
    assert "+0.1 (+20.0%) *" in q
    style = next(ln for ln in lines if ln.startswith("classify/style-logmel/f1_macro"))
    assert "+0 (+0.0%)" in style and "*" not in style

"""mgdata compare: versions from DVC experiments, git revisions and folders, side by side with deltas."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mgdata.compare import Version, compare, load_workspace, render, versions_from_exp_show

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


def _dvc_project(root: Path, stage: str, params: str, dvc_yaml: str):
    """A git + DVC project in ``root`` with one stage, reproduced and committed; returns (run, env, bin_dir)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}

    def run(*cmd):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True, text=True)

    run("git", "init", "-q")
    run("git", "config", "user.email", "t@example.org")
    run("git", "config", "user.name", "t")
    run("dvc", "init", "-q")
    (root / "stage.py").write_text(stage)
    (root / "params.yaml").write_text(params)
    (root / "dvc.yaml").write_text(dvc_yaml)
    run("dvc", "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "base")
    return run, env, bin_dir


@pytest.mark.slow
def test_compare_two_real_dvc_experiments(tmp_path):
    run, env, bin_dir = _dvc_project(
        tmp_path,
        STAGE,
        "model:\n  x: 5\n  y: 2\n",
        "stages:\n  s:\n    cmd: python stage.py\n    deps: [stage.py]\n    params: [model]\n"
        "    metrics:\n      - metrics/classify/q-logmel.json: {cache: false}\n"
        "      - metrics/classify/style-logmel.json: {cache: false}\n",
    )
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


def _marks_version(name: str, f1: float, f1_std: float | None, acc: float) -> Version:
    metrics = {"classify/q/f1": f1, "classify/q/acc": acc}
    if f1_std is not None:
        metrics["classify/q/f1_std"] = f1_std
    return Version(name, metrics, {"classify.trials": 3})


def test_a_change_within_the_recorded_noise_is_not_marked():
    base = _marks_version("base", 0.30, 0.043, 0.50)
    # +9.7 % with std 0.043 -> 0.074: pooled std 0.0605, 2 x pooled = 0.121 > |delta| 0.029 -> noise, no mark.
    noisy = _marks_version("noisy", 0.329, 0.074, 0.52)
    cmp = compare([base, noisy], ["classify/q/f1", "classify/q/acc"])
    assert cmp.pooled_std("classify/q/f1", 1) == pytest.approx(((0.043**2 + 0.074**2) / 2) ** 0.5)
    assert cmp.mark("classify/q/f1", 1) == ""
    assert cmp.mark("classify/q/acc", 1) == "*"  # no _std: the relative threshold (+4 % >= 1 %)
    assert cmp.params == []  # same params in both: none listed
    # Beyond 2 pooled stds: marked by the noise rule.
    real = _marks_version("real", 0.45, 0.04, 0.50)
    assert compare([base, real]).mark("classify/q/f1", 1) == "†"
    text = render(compare([base, noisy, real], ["classify/q/f1", "classify/q/acc"]))
    assert "† |delta| > 2 x pooled std" in text and "* |relative change| >= 0.01" in text


def test_noise_rule_needs_a_std_in_both_versions_and_a_nonzero_one():
    base = _marks_version("base", 0.30, None, 0.50)
    assert compare([base, _marks_version("b", 0.31, 0.05, 0.5)]).mark("classify/q/f1", 1) == "*"
    zero = _marks_version("zero", 0.30, 0.0, 0.50)  # one seed: no spread recorded, so the relative rule applies
    assert compare([zero, _marks_version("b", 0.31, 0.0, 0.5)]).mark("classify/q/f1", 1) == "*"
    cmp = compare([base, _marks_version("b", 0.30, None, 0.5)], ["classify/q/f1"])
    assert cmp.mark("classify/q/f1", 1) == "" and render(cmp).rstrip().splitlines()[-1].startswith("classify/q/f1")


# Reads a key of the project's params.yaml (so the real file, with every list and null, goes through DVC's
# rewrite and exp show); `f1` moves with trials inside its recorded noise, `acc` has no std, `big` moves far.
STAGE_NOISE = """import json, os, yaml
t = yaml.safe_load(open("params.yaml"))["classify"]["trials"]
os.makedirs("metrics/classify", exist_ok=True)
json.dump({"f1": 0.5 + 0.01 * t, "f1_std": 0.05, "acc": 0.5 + 0.01 * t, "big": t / 10, "big_std": 0.01},
          open("metrics/classify/q-logmel.json", "w"))
"""


@pytest.mark.slow
def test_two_real_experiments_list_one_param_and_mark_by_noise(tmp_path):
    run, env, bin_dir = _dvc_project(
        tmp_path,
        STAGE_NOISE,
        (Path(__file__).resolve().parents[1] / "params.yaml").read_text(),
        "stages:\n  s:\n    cmd: python stage.py\n    deps: [stage.py]\n    params: [classify.trials]\n"
        "    metrics:\n      - metrics/classify/q-logmel.json: {cache: false}\n",
    )
    trials = yaml.safe_load((tmp_path / "params.yaml").read_text())["classify"]["trials"]
    for n in (trials + 2, trials + 4):
        run("dvc", "exp", "run", "-q", "-S", f"classify.trials={n}", "-n", f"t{n}")
        # Back to the committed baseline, so each experiment changes one knob (README, Quickstart).
        run("git", "checkout", "--", "params.yaml", "dvc.lock", "metrics")
    out = subprocess.run(
        [
            str(bin_dir / "mgdata"),
            "compare",
            "--metrics",
            "classify/*/f1",
            "--metrics",
            "classify/*/acc",
            "--metrics",
            "classify/*/big",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    names = lines[0].split()[:3]  # the baseline, then the experiments (newest first)
    assert names[0] == "master" and sorted(names[1:]) == [f"t{trials + 2}", f"t{trials + 4}"]
    params = [ln for ln in lines if ln.startswith("param ")]
    assert [p.split()[1] for p in params] == ["classify.trials"], out
    assert params[0].split()[2:5] == [str(trials), *(n[1:] for n in names[1:])]
    f1 = next(ln for ln in lines if ln.startswith("classify/q-logmel/f1 "))
    assert "+0.02 (" in f1 and "*" not in f1 and "†" not in f1  # +3.8 %, but within 2 x std 0.05
    acc = next(ln for ln in lines if ln.startswith("classify/q-logmel/acc "))
    assert acc.count(" *") == 2  # no std recorded: the relative threshold marks both
    big = next(ln for ln in lines if ln.startswith("classify/q-logmel/big "))
    assert big.count(" †") == 2 and "*" not in big
    assert any(ln.startswith("† |delta| > 2 x pooled std") for ln in lines)
    assert any(ln.startswith("* |relative change| >= 0.01") for ln in lines)

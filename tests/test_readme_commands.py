"""README commands work as written, without activating the virtualenv (stage cmds go through stages/py)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_stage_command_uses_the_project_interpreter():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        cmd = stage.get("do", stage)["cmd"]
        assert cmd.startswith("sh stages/py "), f"{name}: a bare `python` needs an activated venv: {cmd}"


def test_readme_exp_run_examples_name_real_params():
    from mgdata.params import validate_params

    examples = re.findall(r"\.venv/bin/dvc exp run ((?:-S \S+ ?)+)", README)
    assert examples, "the README shows `dvc exp run -S ...`"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for ex in examples:
        for assignment in re.findall(r"-S '?([^' ]+)'?", ex):
            key, _, value = assignment.partition("=")
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"README example sets unknown param {key}"
                node = node[part]
    validate_params(ROOT / "params.yaml")


@pytest.mark.slow
def test_dvc_exp_run_works_without_activation(tmp_path):
    """`.venv/bin/dvc exp run -S ...` with a PATH that has no venv: the stage still imports mgdata."""
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    env["DVC_NO_ANALYTICS"] = "1"
    (tmp_path / "stages").mkdir()
    shutil.copy(ROOT / "stages" / "py", tmp_path / "stages" / "py")
    os.symlink(bin_dir.parent, tmp_path / ".venv")
    (tmp_path / "stages" / "echo.py").write_text(
        "import json, mgdata, yaml\n"
        "p = yaml.safe_load(open('params.yaml'))\n"
        "json.dump({'x': p['s']['x'], 'v': len(mgdata.__version__)}, open('m.json', 'w'))\n"
    )
    (tmp_path / "params.yaml").write_text("s:\n  x: 1\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  echo:\n    cmd: sh stages/py stages/echo.py\n    deps: [stages/echo.py]\n    params: [s]\n"
        "    metrics:\n      - m.json: {cache: false}\n"
    )

    def run(*cmd):
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, f"{cmd}: {out.stdout}\n{out.stderr}"
        return out

    git = shutil.which("git")
    run(git, "init", "-q")
    run(git, "config", "user.email", "t@example.org")
    run(git, "config", "user.name", "t")
    run(str(bin_dir / "dvc"), "init", "-q")
    (tmp_path / ".gitignore").write_text(".venv\n")
    run(git, "add", "-A")
    run(git, "commit", "-qm", "init")
    run(str(bin_dir / "dvc"), "exp", "run", "-S", "s.x=7")
    assert '"x": 7' in (tmp_path / "m.json").read_text()


@pytest.mark.slow
def test_rejected_params_change_costs_no_outputs(tmp_path):
    """`dvc repro` with a bad params value stops before anything is removed: outputs are `persist: true` and
    stage_main validates the whole file first (DVC used to delete a stage's outputs before the stage ran)."""
    from mgdata.testing import make_corpus_artifact

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    make_corpus_artifact(tmp_path / "data" / "corpus", n_tracks=4, n_stems=2, duration_s=2.0)
    (tmp_path / "stages").mkdir()
    for f in ("py", "relabel.py"):
        shutil.copy(ROOT / "stages" / f, tmp_path / "stages" / f)
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["relabel"]
    stage["deps"] = ["stages/relabel.py", "data/corpus/manifest.parquet"]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"relabel": stage}}))
    good = "relabel:\n  mapping: paper1\n  corpus_tag_column: mood_tags\n  jamendo: {metadata_dir: null}\n"
    (tmp_path / "params.yaml").write_text(good)

    def run(*cmd, ok=True):
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert (out.returncode == 0) == ok, f"{cmd}: {out.stdout}\n{out.stderr}"
        return out

    run("git", "init", "-q")
    run(str(bin_dir / "dvc"), "init", "-q")
    run(str(bin_dir / "dvc"), "repro")
    outputs = {p: p.read_bytes() for p in sorted((tmp_path / "data" / "relabel").rglob("*")) if p.is_file()}
    assert outputs and (tmp_path / "metrics" / "relabel.json").exists()
    # A typo in a value the stage depends on: DVC reruns it, the stage rejects it before touching anything.
    (tmp_path / "params.yaml").write_text(good.replace("mood_tags", "moodtags"))
    bad = run(str(bin_dir / "dvc"), "repro", ok=False)
    assert "relabel.corpus_tag_column" in bad.stderr + bad.stdout
    assert {p: p.read_bytes() for p in outputs} == outputs, "a rejected params change removed or changed outputs"
    assert (tmp_path / "metrics" / "relabel.json").exists()

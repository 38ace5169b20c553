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

"""The committed params.yaml survives ``dvc exp run -S``: every comment line and every other key's value.

DVC applies ``-S key=value`` by loading params.yaml with ruamel.yaml (round trip), merging the new values in and
dumping it back: every list is replaced by a plain list and dumped in block style (``- a``). ruamel keeps a comment
that follows a *flow* list (``[a, b]``, attached to the parent mapping) but drops one that follows a *block* list
(attached to the list object DVC replaces), hence the flow-style lists in params.yaml.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# One stage that reads the overridden key, so the experiment really runs (and DVC really rewrites params.yaml).
DVC_YAML = """stages:
  trials:
    cmd: python -c "import yaml; open('out.txt', 'w').write(str(yaml.safe_load(open('params.yaml'))['classify']['trials']))"
    params: [classify.trials]
    outs:
      - out.txt:
          cache: false
"""


def _comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }


def test_dvc_exp_run_set_param_keeps_every_comment_and_value(tmp_path):
    env = _env()

    def run(*cmd: str) -> None:
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"{' '.join(cmd)} -> {res.returncode}\n{res.stdout}\n{res.stderr}"

    original = (ROOT / "params.yaml").read_text()
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    run("git", "init", "-q")
    run(str(BIN / "dvc"), "init", "-q")
    run(str(BIN / "dvc"), "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "base")
    before = yaml.safe_load(original)
    new_trials = before["classify"]["trials"] + 2

    run(str(BIN / "dvc"), "exp", "run", "-q", "-S", f"classify.trials={new_trials}")

    rewritten = (tmp_path / "params.yaml").read_text()
    assert rewritten != original, "DVC did not rewrite params.yaml: the test no longer exercises its writer"
    assert (tmp_path / "out.txt").read_text() == str(new_trials)
    lost = [c for c in _comments(original) if c not in _comments(rewritten)]
    assert _comments(rewritten) == _comments(original), f"{len(lost)} comment lines lost, first: {lost[:3]}"
    after = yaml.safe_load(rewritten)
    assert after["classify"].pop("trials") == new_trials
    before["classify"].pop("trials")
    assert after == before


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="DVC limitation: its first rewrite turns flow lists into block lists, so a second -S on the rewritten "
    "file drops the comments that follow lists (README: restore params.yaml between experiments)",
)
def test_a_second_set_param_on_dvcs_rewrite_keeps_comments(tmp_path):
    """The function ``dvc exp run -S`` calls, applied twice: fails today; passes (and then fails strict) once fixed."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    original = _comments(path.read_text())
    apply_overrides(str(path), ["classify.trials=5"])
    assert _comments(path.read_text()) == original  # the first rewrite is lossless (the test above, in-process)
    apply_overrides(str(path), ["decision.max_epochs=20"])
    assert _comments(path.read_text()) == original

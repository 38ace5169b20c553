"""The stage framework: registry <-> scripts <-> dvc.yaml <-> README, and stage_main's error and report rules."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mgdata.pipeline.main import report_path_for
from mgdata.pipeline.registry import STAGES, readme_table
from mgdata.report import StageReport

ROOT = Path(__file__).resolve().parents[1]


def _dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _run_stage(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{name}.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("name", list(STAGES))
def test_every_registered_stage_has_a_thin_script(name):
    import ast

    tree = ast.parse((ROOT / STAGES[name].script).read_text())
    assert ast.get_docstring(tree), "the docstring is the stage's --help"
    code = [node for node in tree.body if not isinstance(node, ast.Expr)]
    assert len(code) <= 3, "a stage script is imports + `stage_main(name)`"
    assert f"stage_main('{name}'" in ast.unparse(tree)


@pytest.mark.parametrize("name", list(_dvc_stages()))
def test_dvc_stage_matches_registry(name):
    stage = _dvc_stages()[name]
    body = stage.get("do", stage)
    spec = STAGES[name.split("@")[0]]
    assert body["cmd"].startswith(f"sh stages/py {spec.script}"), body["cmd"]
    deps = set(body.get("deps", []))
    missing = [p for p in (spec.script, *spec.code) if p not in deps]
    assert not missing, f"{name}: dvc.yaml deps lack {missing}"
    for key in body.get("params", []):
        key = key if isinstance(key, str) else next(iter(key))
        assert key.split(".")[0] in spec.sections, f"{name}: params dep {key} outside sections {spec.sections}"


def test_every_code_dep_exists():
    for spec in STAGES.values():
        for path in (spec.script, *spec.code):
            assert (ROOT / path).exists(), f"{spec.name}: {path} does not exist"


def test_readme_table_is_rendered_from_the_registry():
    assert readme_table() in (ROOT / "README.md").read_text()


def test_report_path_mirrors_metrics_path():
    assert report_path_for(Path("metrics/embed/a.json")) == Path("stage_reports/embed/a.json")
    assert report_path_for(Path("/tmp/m.json")) == Path("/tmp/m.report.json")


def test_metrics_hold_numbers_only_and_reasons_are_deterministic(tmp_path):
    rep = StageReport("x")
    rep.count("tracks", 3)
    rep.set("hours", 0.5)
    rep.set("per_split", {"train": 2})
    rep.set("mapping", "paper1")
    rep.skip(f"<{io.BytesIO()!r}>", f"bad audio: {io.BytesIO()!r}")
    rep.write(tmp_path / "m.json", tmp_path / "r.json")
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics == {"tracks": 3, "hours": 0.5, "skipped": 1}
    full = json.loads((tmp_path / "r.json").read_text())
    assert full["per_split"] == {"train": 2} and full["mapping"] == "paper1"
    assert "0x" not in json.dumps(full)
    # A stage's headline patterns narrow the metrics file; the report keeps every number.
    rep.set("free_tpp_model", 12.5)
    rep.write(tmp_path / "h.json", tmp_path / "hr.json", keys=("free_tpp_*", "tracks"))
    assert json.loads((tmp_path / "h.json").read_text()) == {"free_tpp_model": 12.5, "tracks": 3, "skipped": 1}
    assert json.loads((tmp_path / "hr.json").read_text())["hours"] == 0.5


def _flat_keys(obj, prefix=""):
    for k, v in obj.items():
        if isinstance(v, dict):
            yield from _flat_keys(v, f"{prefix}{k}.")
        else:
            yield prefix + k


def test_dvc_metrics_show_of_each_stage_fits_a_terminal():
    """Each stage's committed metrics (`dvc metrics show metrics/<stage>`, one row per file) share at most 30
    columns, numbers only.

    The generator leaderboard (metrics/geneval) is exempt: one column per (source, f, r) point by design (the
    issue's key names). With two generators and paired decision tests the union over the whole pipeline is wider
    than a terminal, so the README shows the per-stage view.
    """
    files = sorted((ROOT / "metrics").rglob("*.json"))
    assert len(files) >= 20
    per_stage: dict[str, set] = {}
    for f in files:
        data = json.loads(f.read_text())
        assert all(isinstance(v, (int, float)) for v in data.values()), f
        stage = f.parent.name if f.parent != ROOT / "metrics" else f.stem
        per_stage.setdefault(stage, set()).update(_flat_keys(data))
    wide = {s: len(c) for s, c in per_stage.items() if len(c) > 30 and s != "geneval"}
    assert not wide, wide


@pytest.mark.parametrize(
    "params, expected",
    [
        ("relabel:\n  mapping: [paper1\n", r"^error: params: params\.yaml:3:1: YAML syntax error"),
        ("relabel:\n  mappin: paper1\n", r"relabel\.mappin: unknown key \(did you mean 'mapping'\?\)"),
        ("shards: {}\n", r"relabel: section missing from params\.yaml"),
        ("relabel: {}\nrelabl: {}\n", r"relabl: unknown section \(did you mean 'relabel'\?\)"),
    ],
)
def test_params_problems_stop_the_stage_with_one_line(tmp_path, params, expected):
    (tmp_path / "params.yaml").write_text(params)
    out = _run_stage("relabel", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(expected, lines[0]), out.stderr
    assert not (tmp_path / "data").exists(), "nothing may be written before params are valid"


def test_a_stage_runs_its_own_numerics_on_one_blas_thread(tmp_path, monkeypatch):
    # Executor tasks already run on one BLAS thread; the stage's in-process work (FD, novelty, consolidation) must
    # too, or a machine with another core count partitions products differently and changes the last bits.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np

    from mgdata.pipeline import StageOutcome, main

    np.ones((64, 64)) @ np.ones((64, 64))  # BLAS loaded, so threadpoolctl can see it
    seen = []

    def fake_run(ctx):
        seen.extend(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")
        return StageOutcome("ok", inputs=0, outputs=0)

    monkeypatch.setattr(main, "import_target", lambda target: fake_run)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("relabel: {}\n")
    assert main.stage_main("relabel", ["--params", "params.yaml", "--no-progress"]) == 0
    assert seen and set(seen) == {1}

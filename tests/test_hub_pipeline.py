"""A pipeline whose input is ``hf://datasets/ORG/NAME@rev``: stage hub_pull pulls it, a downstream stage reads it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mgdata.testing import make_corpus_artifact
from mgdata.testing.hub_server import HubServer

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_mgdataFAKEpipelinetoken000000"


@pytest.mark.slow
def test_pipeline_runs_on_a_pinned_hub_input(tmp_path):
    bin_dir = Path(sys.executable).parent
    with HubServer(tmp_path / "server") as hub:
        # The Makefile exports HF_HUB_OFFLINE=1 for the offline pipeline; this test talks to the loopback Hub.
        base = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env = {
            **base,
            **hub.client_env(TOKEN),
            "HF_HOME": str(tmp_path / "hfhome"),
            "DVC_NO_ANALYTICS": "1",
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
        }
        art = make_corpus_artifact(tmp_path / "src", n_tracks=4, n_stems=2, duration_s=2.0) / "mix"
        push = subprocess.run(
            [sys.executable, "-m", "mgdata", "hub", "push", str(art), "--repo", "org/mix", "--tag", "v1"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert push.returncode == 0, push.stderr
        proj = tmp_path / "proj"
        (proj / "stages").mkdir(parents=True)
        for f in ("py", "hub_pull.py"):
            shutil.copy(ROOT / "stages" / f, proj / "stages" / f)
        (proj / "params.yaml").write_text(
            yaml.safe_dump({"hub": {"inputs": [{"name": "mix", "uri": "hf://datasets/org/mix@v1"}]}})
        )
        stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["hub_pull"]
        stage["do"]["deps"] = ["stages/hub_pull.py"]
        downstream = {
            "cmd": f"{bin_dir}/mgdata shards inspect data/hub/mix --json > inspected.json",
            "deps": ["data/hub/mix"],
            "outs": ["inspected.json"],
        }
        (proj / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"hub_pull": stage, "inspect": downstream}}))

        def run(*cmd):
            out = subprocess.run(cmd, cwd=proj, env=env, capture_output=True, text=True)
            assert out.returncode == 0, f"{cmd}:\n{out.stdout}\n{out.stderr}"
            return out

        run("git", "init", "-q")
        run(str(bin_dir / "dvc"), "init", "-q")
        run(str(bin_dir / "dvc"), "repro")
        inspected = json.loads((proj / "inspected.json").read_text())
        assert inspected["ok"] and inspected["samples"] == 4
        for f in art.iterdir():
            assert (proj / "data/hub/mix" / f.name).read_bytes() == f.read_bytes(), f.name
        lock = json.loads((proj / "data/hub/mix/hub.lock.json").read_text())
        assert lock["revision"] == "v1" and len(lock["commit"]) == 40
        assert "hub_pull@0" in (proj / "dvc.lock").read_text()  # DVC names list items by position
        # A second repro is a no-op; the token never lands in the project.
        assert "up to date" in run(str(bin_dir / "dvc"), "status").stdout
        for p in proj.rglob("*"):
            if p.is_file() and ".dvc/cache" not in p.as_posix():
                assert TOKEN.encode() not in p.read_bytes(), p

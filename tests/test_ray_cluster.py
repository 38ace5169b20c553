"""A real two-node Ray cluster started on this machine: tasks run in the driver's directory, bytes equal serial.

The second node is started from another working directory, as on a real cluster where a node's processes do not
start where the driver runs. mgdata's Ray tasks pass paths (README, "A Ray cluster"): each task enters the driver's
working directory, so relative inputs resolve the same on every node, and the embeddings written through the
cluster are byte-identical to a serial build.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


# Runs in the project directory; relative paths resolve on the second node only because every task enters the
# driver's working directory (mgdata.exec).
DRIVER = """
import json
from pathlib import Path
from mgdata.embed.build import build_embeddings
from mgdata.embed.config import EmbedConfig
from mgdata.exec import ExecConfig, check_cluster
from mgdata.testing import make_corpus_artifact

make_corpus_artifact(Path("corpus"), n_tracks=8)
cluster = ExecConfig(backend="ray", workers=2)
counts = check_cluster(cluster, n_tasks=16)  # raises if a task ran outside the driver's directory
build_embeddings("corpus/mix", Path("out/ray"), cfg=EmbedConfig(), embedder="logmel", executor=cluster)
print(json.dumps(counts))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_two_node_cluster_from_another_working_directory_is_byte_identical(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from mgdata.embed.build import build_embeddings
    from mgdata.embed.config import EmbedConfig
    from mgdata.exec import ExecConfig

    ray_cli = str(Path(sys.executable).with_name("ray"))
    # Ray 2.60 turns token authentication on for `ray start --head`: every node and client needs this.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    address = f"127.0.0.1:{_free_port()}"
    dirs = {name: tmp_path / name for name in ("head", "node2", "project")}
    for d in dirs.values():
        d.mkdir()
    start = [ray_cli, "start", "--num-cpus", "1", "--node-ip-address", "127.0.0.1"]
    try:
        for args, cwd in (
            ([*start, "--head", "--include-dashboard=false", "--port", address.split(":")[1]], "head"),
            ([*start, "--address", address], "node2"),
        ):
            done = subprocess.run(args, cwd=dirs[cwd], env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"ray start ({cwd}) failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        # The driver is its own process: Ray reads RAY_AUTH_MODE when it is imported.
        done = subprocess.run(
            [sys.executable, "-c", DRIVER],
            cwd=dirs["project"],
            env={**env, "RAY_ADDRESS": address},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        counts = json.loads(done.stdout.strip().splitlines()[-1])
        assert len(counts) == 2 and sum(counts.values()) == 16, counts  # both nodes took tasks
        monkeypatch.chdir(dirs["project"])
        build_embeddings(
            "corpus/mix",
            Path("out/serial"),
            cfg=EmbedConfig(),
            embedder="logmel",
            executor=ExecConfig(backend="serial"),
        )
        serial, ray_out = _digests(Path("out/serial")), _digests(Path("out/ray"))
        assert serial == ray_out and any(n.endswith(".tar") for n in serial)
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True)

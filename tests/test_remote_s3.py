"""DVC S3 remote round trip against a local S3-compatible server (moto_server on loopback).

A temp git + DVC repo tracks a folder with ``dvc add`` and a one-stage pipeline output; ``dvc push`` sends the
cache to the bucket, the cache and the outputs are wiped, ``dvc pull`` restores them byte-identical and
``dvc status -c`` reports nothing to push or pull. Credentials are dummy values in the environment; the default
remote and the endpoint live in ``.dvc/config.local`` (``dvc remote default/modify --local``), exactly as a team
member's setup would (README, "Sharing artifacts with a team"). Needs the ``remote`` extra (``pip install -e ".[remote]"``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
BUCKET = "mgdata-remote-test"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        # Never read a developer's real AWS profile or credentials.
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return env


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server on 127.0.0.1:<free port> with an empty bucket; killed at the end."""
    pytest.importorskip("boto3")
    pytest.importorskip("dvc_s3")
    exe = BIN / "moto_server"
    if not exe.exists():
        pytest.skip("moto_server not installed (pip install -e '.[remote]')")
    tmp = tmp_path_factory.mktemp("moto")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "moto.log", "wb")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except urllib.error.HTTPError:
                break  # any HTTP answer means the server is up
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {(tmp / 'moto.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        import boto3

        env = _env(tmp)
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket=BUCKET)
        yield url, s3
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_dvc_push_wipe_pull_roundtrip(s3_endpoint, tmp_path):
    url, s3 = s3_endpoint
    repo = tmp_path / "repo"
    repo.mkdir()
    env = _env(tmp_path)
    dvc = str(BIN / "dvc")
    _run(["git", "init", "-q"], repo, env)
    _run([dvc, "init", "-q"], repo, env)
    _run([dvc, "config", "core.analytics", "false"], repo, env)
    # The committed part of the setup, as in the project's .dvc/config: remote name + bucket url, and no default
    # remote (an s3:// default would make every DVC command need dvc-s3). Making it the default and the endpoint
    # (a team's own S3-compatible server) go to config.local, credentials stay in the environment.
    _run([dvc, "remote", "add", "storage", f"s3://{BUCKET}/dvcstore"], repo, env)
    _run([dvc, "remote", "default", "--local", "storage"], repo, env)
    _run([dvc, "remote", "modify", "--local", "storage", "endpointurl", url], repo, env)
    committed = (repo / ".dvc" / "config").read_text()
    assert url not in committed
    assert "testing" not in committed
    assert "remote = storage" not in committed

    # 1) a `dvc add`-tracked folder of small binary files (one larger than a typical chunk)
    data = repo / "data" / "raw"
    data.mkdir(parents=True)
    for i in range(5):
        (data / f"part-{i}.bin").write_bytes(hashlib.sha256(str(i).encode()).digest() * (1 + 40 * i))
    (data / "big.bin").write_bytes(os.urandom(3 << 20))
    _run([dvc, "add", "-q", "data/raw"], repo, env)
    # 2) a one-stage pipeline whose output derives from the tracked folder
    _run(
        [
            dvc,
            "stage",
            "add",
            "-q",
            "-n",
            "digest",
            "-d",
            "data/raw",
            "-o",
            "data/digest",
            "python -c \"import hashlib,pathlib;o=pathlib.Path('data/digest');o.mkdir();"
            "[(o/(p.name+'.sha')).write_text(hashlib.sha256(p.read_bytes()).hexdigest()) "
            "for p in sorted(pathlib.Path('data/raw').iterdir())]\"",
        ],
        repo,
        env,
    )
    _run([dvc, "repro", "-q"], repo, env)
    before = {
        **_digest_tree(repo / "data/raw"),
        **{"digest/" + k: v for k, v in _digest_tree(repo / "data/digest").items()},
    }
    assert len(before) == 12

    _run([dvc, "push", "-q"], repo, env)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="dvcstore/")
    assert listed.get("KeyCount", 0) >= 12, listed  # every file object (+ .dir manifests) reached the bucket

    # Wipe everything local that DVC could restore from: cache and outputs.
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data" / "raw")
    shutil.rmtree(repo / "data" / "digest")
    _run([dvc, "pull", "-q"], repo, env)
    after = {
        **_digest_tree(repo / "data/raw"),
        **{"digest/" + k: v for k, v in _digest_tree(repo / "data/digest").items()},
    }
    assert after == before

    # Nothing new locally, nothing missing remotely or locally.
    assert json.loads(_run([dvc, "status", "-c", "--json"], repo, env) or "{}") == {}
    assert "in sync" in _run([dvc, "status", "-c"], repo, env)
    pipeline = _run([dvc, "status"], repo, env)
    assert "up to date" in pipeline.lower(), pipeline

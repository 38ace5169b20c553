"""Hub network failures: bounded retries with backoff for transient ones, then one line naming the endpoint.

Faults come from the loopback Hub (503 then 200, 429 with Retry-After, a transfer cut
mid-way, no answer), a closed port on 127.0.0.1 (connection refused) and a name under
the reserved ``.invalid`` TLD (DNS failure); nothing leaves the machine. Waits are
recorded instead of slept, and tests count attempts, never seconds.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mgdata.errors import InputError, MgdataError
from mgdata.hub.net import HubNetworkError, RetryPolicy, classify
from mgdata.hub.pull import pull_artifact
from mgdata.hub.push import push_artifact
from mgdata.testing import make_corpus_artifact
from mgdata.testing.hub_server import HubServer

TOKEN = "hf_mgdataFAKEnetwork0000000000000"
REPO = "org/mix"
URI = f"hf://datasets/{REPO}@v1"
DNS_FAIL = "http://hub.mgdata.invalid"  # RFC 2606: .invalid never resolves
REVISION = r"^/api/datasets/org/mix/revision/v1$"  # only the pull's own resolve asks for the tag
SHARD = r"^/datasets/org/mix/resolve/[0-9a-f]{40}/train-000000\.tar$"
COMMIT = r"^/api/datasets/org/mix/commit/"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def online(monkeypatch):
    """In-process huggingface_hub talking to loopback servers (the suite is otherwise offline)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def api_for(endpoint: str):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=TOKEN)


class Waits(list):
    """A ``sleep`` that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


POLICY = RetryPolicy(retries=3, backoff_s=0.5, max_backoff_s=4.0, timeout_s=5.0)


@pytest.fixture
def hub(tmp_path, online):
    """A loopback Hub holding REPO at tag v1 (pushed by mgdata itself)."""
    with HubServer(tmp_path / "server") as server:
        art = make_corpus_artifact(tmp_path / "src", n_tracks=4, n_stems=1, duration_s=1.0) / "mix"
        push_artifact(art, REPO, tag="v1", api=api_for(server.url), policy=POLICY)
        server.art = art
        yield server


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ pull


def test_503_then_200_is_retried_once_with_the_base_backoff(hub, tmp_path):
    hub.fail("GET", REVISION, status=503)
    waits = Waits()
    res = pull_artifact(URI, tmp_path / "out", api=api_for(hub.url), policy=POLICY, sleep=waits)
    assert res.files and hub.count("GET", REVISION) == 2
    assert waits == [0.5]


def test_persistent_5xx_stops_after_the_retries_and_leaves_the_folder_as_it_was(hub, tmp_path):
    out = tmp_path / "out"
    pull_artifact(URI, out, api=api_for(hub.url), policy=POLICY)
    before = files_of(out)
    hub.fail("GET", REVISION, status=502, times=-1)
    waits = Waits()
    n0 = hub.count("GET", REVISION)
    with pytest.raises(HubNetworkError) as exc:
        pull_artifact(URI, out, api=api_for(hub.url), policy=POLICY, sleep=waits, force=True)
    msg = str(exc.value)
    assert "\n" not in msg and hub.url in msg and "HTTP 502" in msg and "after 4 attempts" in msg and "check" in msg
    assert exc.value.kind == "server" and exc.value.attempts == 4
    assert hub.count("GET", REVISION) - n0 == 4  # 1 + POLICY.retries
    assert waits == [0.5, 1.0, 2.0]  # exponential
    assert files_of(out) == before


def test_429_honours_retry_after_up_to_the_cap(hub, tmp_path):
    hub.fail("GET", REVISION, status=429, retry_after="3")
    hub.fail("GET", REVISION, status=429, retry_after="3600")
    waits = Waits()
    pull_artifact(URI, tmp_path / "out", api=api_for(hub.url), policy=POLICY, sleep=waits)
    assert hub.count("GET", REVISION) == 3
    assert waits == [3.0, POLICY.max_backoff_s]


def test_download_cut_mid_transfer_is_resumed(hub, tmp_path):
    hub.fail("GET", SHARD, action="cut")
    waits = Waits()
    out = tmp_path / "out"
    pull_artifact(URI, out, api=api_for(hub.url), policy=POLICY, sleep=waits)
    assert hub.count("GET", SHARD) == 2 and len(waits) == 1
    got = files_of(out)
    assert {got.pop("hub.lock.json"), got.pop("README.md")} and got == files_of(hub.art)


def test_5xx_on_a_file_download_is_retried(hub, tmp_path):
    hub.fail("GET", SHARD, status=500)
    waits = Waits()
    pull_artifact(URI, tmp_path / "out", api=api_for(hub.url), policy=POLICY, sleep=waits)
    assert hub.count("GET", SHARD) == 2 and waits == [0.5]


def test_download_cut_every_time_fails_and_nothing_lands(hub, tmp_path):
    out = tmp_path / "out"
    pull_artifact(URI, out, api=api_for(hub.url), policy=POLICY)
    before = files_of(out)
    hub.fail("GET", SHARD, action="cut", times=-1)
    n0 = hub.count("GET", SHARD)
    with pytest.raises(HubNetworkError) as exc:
        pull_artifact(URI, out, api=api_for(hub.url), policy=POLICY, sleep=Waits(), force=True)
    assert exc.value.kind == "reset" and hub.url in str(exc.value)
    assert hub.count("GET", SHARD) - n0 == 4
    assert files_of(out) == before
    assert not (tmp_path / ".out.hub-new").exists()


def test_no_answer_times_out_and_is_retried(hub, tmp_path):
    hub.fail("GET", REVISION, action="hang")
    policy = RetryPolicy(retries=2, backoff_s=0.5, timeout_s=0.5)
    waits = Waits()
    pull_artifact(URI, tmp_path / "out", api=api_for(hub.url), policy=policy, sleep=waits)
    assert hub.count("GET", REVISION) == 2 and waits == [0.5]


def test_4xx_other_than_429_is_not_retried(hub, tmp_path):
    waits = Waits()
    with pytest.raises(InputError, match="no dataset repo org/nope"):
        pull_artifact("hf://datasets/org/nope@v1", tmp_path / "out", api=api_for(hub.url), policy=POLICY, sleep=waits)
    assert hub.count("GET", r"^/api/datasets/org/nope/") == 1 and waits == []


@pytest.mark.parametrize("kind", ["dns", "refused"])
def test_unresolvable_or_closed_endpoint_fails_at_once(online, tmp_path, kind):
    endpoint = DNS_FAIL if kind == "dns" else f"http://127.0.0.1:{closed_port()}"
    waits = Waits()
    with pytest.raises(HubNetworkError) as exc:
        pull_artifact(URI, tmp_path / "out", api=api_for(endpoint), policy=POLICY, sleep=waits)
    assert exc.value.kind == kind and exc.value.attempts == 1 and waits == []
    msg = str(exc.value)
    assert msg.startswith(f"{endpoint}: pull {URI} failed: ") and "; check " in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()


def test_pull_never_replaces_a_folder_it_did_not_write(hub, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a pulled folder"):
        pull_artifact(URI, out, api=api_for(hub.url), policy=POLICY)
    assert (out / "notes.txt").read_text() == "keep me" and hub.count("GET", REVISION) == 0


# ------------------------------------------------------------------------------------------------ push


def _remote(hub):
    repo = hub.state.get("dataset", REPO)
    return dict(repo["branches"]), len(repo["commits"])


def test_push_failing_before_the_commit_leaves_the_remote_unchanged(hub, tmp_path):
    art = make_corpus_artifact(tmp_path / "v2", n_tracks=5, n_stems=1, duration_s=1.0) / "mix"
    before = _remote(hub)
    hub.fail("POST", COMMIT, status=503, times=-1)
    n0 = hub.count("POST", COMMIT)
    waits = Waits()
    with pytest.raises(HubNetworkError) as exc:
        push_artifact(art, REPO, api=api_for(hub.url), policy=POLICY, sleep=waits)
    assert exc.value.kind == "server" and f"push to {REPO}" in str(exc.value)
    assert hub.count("POST", COMMIT) - n0 == 4 and len(waits) == 3
    assert _remote(hub) == before
    # Once the Hub is back, the same push lands as one commit.
    hub.state.faults.clear()
    res = push_artifact(art, REPO, api=api_for(hub.url), policy=POLICY)
    assert res.committed and _remote(hub)[1] == before[1] + 1


def test_push_with_an_upload_cut_mid_transfer_is_retried_into_one_commit(hub, tmp_path):
    art = make_corpus_artifact(tmp_path / "v3", n_tracks=6, n_stems=1, duration_s=1.0) / "mix"
    before = _remote(hub)
    hub.fail("PUT", r"^/lfs-upload/", action="cut")
    waits = Waits()
    res = push_artifact(art, REPO, api=api_for(hub.url), policy=POLICY, sleep=waits)
    assert res.committed and len(waits) == 1
    assert _remote(hub)[1] == before[1] + 1


def test_push_whose_commit_answer_is_lost_is_not_committed_twice(hub, tmp_path):
    art = make_corpus_artifact(tmp_path / "v4", n_tracks=3, n_stems=1, duration_s=1.0) / "mix"
    before = _remote(hub)
    hub.fail("POST", COMMIT, action="close-after")
    n0 = hub.count("POST", COMMIT)
    waits = Waits()
    res = push_artifact(art, REPO, api=api_for(hub.url), policy=POLICY, sleep=waits)
    assert res.committed and hub.count("POST", COMMIT) - n0 == 1 and len(waits) == 1
    assert _remote(hub)[1] == before[1] + 1
    assert res.commit == hub.state.get("dataset", REPO)["branches"]["main"]


@pytest.mark.parametrize("kind", ["dns", "refused"])
def test_push_to_an_unreachable_endpoint_fails_at_once(online, tmp_path, kind):
    endpoint = DNS_FAIL if kind == "dns" else f"http://127.0.0.1:{closed_port()}"
    art = make_corpus_artifact(tmp_path / "c", n_tracks=3, n_stems=1, duration_s=1.0) / "mix"
    with pytest.raises(HubNetworkError) as exc:
        push_artifact(art, REPO, api=api_for(endpoint), policy=POLICY, sleep=Waits())
    assert exc.value.kind == kind and exc.value.attempts == 1 and endpoint in str(exc.value)


# ------------------------------------------------------------------------------------------------ classification


def test_classify_leaves_other_errors_alone():
    assert classify(FileNotFoundError(2, "No such file")) == (None, None, "")
    assert classify(ValueError("x")) == (None, None, "")
    assert issubclass(HubNetworkError, MgdataError)


# ------------------------------------------------------------------------------------------------ CLI and stage


def cli_env(endpoint: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return env | {
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("kind", ["dns", "refused"])
def test_cli_push_and_pull_print_one_line_and_exit_2(tmp_path, kind):
    endpoint = DNS_FAIL if kind == "dns" else f"http://127.0.0.1:{closed_port()}"
    env = cli_env(endpoint, tmp_path / "home")
    art = make_corpus_artifact(tmp_path / "c", n_tracks=3, n_stems=1, duration_s=1.0) / "mix"
    for args in (
        ["pull", "hf://datasets/x/y@main", "--out", str(tmp_path / "dir")],
        ["push", str(art), "--repo", "org/name"],
    ):
        r = subprocess.run(
            [sys.executable, "-m", "mgdata", "hub", *args, "--backoff", "0.01"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        line = one_line(r)
        assert r.returncode == 2 and endpoint in line and "check " in line, line
    assert not (tmp_path / "dir").exists()


def test_cli_pull_retries_a_503_then_succeeds(tmp_path, hub):
    hub.fail("GET", REVISION, status=503)
    r = subprocess.run(
        [sys.executable, "-m", "mgdata", "hub", "pull", URI, "--out", str(tmp_path / "out"), "--backoff", "0.01"],
        env=cli_env(hub.url, tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert hub.count("GET", REVISION) == 2


def test_hub_pull_stage_reports_one_line_with_the_params_retries(tmp_path):
    """Stage hub_pull reads retries from params ``hub``: a closed port fails at once, one line, exit 2."""
    import yaml

    endpoint = f"http://127.0.0.1:{closed_port()}"
    proj = tmp_path / "proj"
    (proj / "stages").mkdir(parents=True)
    root = Path(__file__).resolve().parents[1]
    (proj / "stages" / "hub_pull.py").write_text((root / "stages" / "hub_pull.py").read_text())
    hub = {"inputs": [{"name": "mix", "uri": URI}], "retries": 1, "backoff_s": 0.01, "timeout_s": 5.0}
    (proj / "params.yaml").write_text(yaml.safe_dump({"hub": hub}))
    r = subprocess.run(
        [sys.executable, "stages/hub_pull.py", "--name", "mix"],
        cwd=proj,
        env=cli_env(endpoint, tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith(("INFO ", "DEBUG "))]
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(lines) == 1, r.stderr[-3000:]
    assert endpoint in lines[0] and "connection refused" in lines[0]
    assert not (proj / "data/hub/mix").exists()
    json.dumps(lines)  # the line is plain text

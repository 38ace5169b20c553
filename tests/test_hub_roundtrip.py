"""`mgdata hub push` / `pull` through the loopback Hub server: byte-identical round trips, idempotent pushes,
old revisions still pullable, pulled folders load with plain `datasets`, and the token never leaks.

Clients run in subprocesses so that HF_ENDPOINT / HF_HUB_DISABLE_XET are set before huggingface_hub is imported.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mgdata.hub.files import artifact_files
from mgdata.store import read_artifact_info
from mgdata.testing import make_corpus_artifact
from mgdata.testing.hub_server import HubServer

FAKE_TOKEN = "hf_mgdataFAKEtoken0123456789leakcheck"
REPO = "mgdata-test/corpus-mix"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubwork")
    with HubServer(root / "server") as hub:
        yield {"root": root, "hub": hub, "outputs": []}


def run(work, *args, extra_env=None, check=True):
    """`mgdata ARGS` against the loopback Hub; every output is kept for the token check."""
    env = work["hub"].client_env(FAKE_TOKEN) | {"HF_HOME": str(work["root"] / "hfhome")} | (extra_env or {})
    r = subprocess.run(
        [sys.executable, "-m", "mgdata", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=work["root"],
    )
    work["outputs"].append(r.stdout + r.stderr)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pushed(work):
    art = make_corpus_artifact(work["root"] / "v1", n_tracks=6, n_stems=2, duration_s=2.0) / "mix"
    r = run(work, "hub", "push", art, "--repo", REPO, "--tag", "v1", "--json")
    return {"art": art, "result": json.loads(r.stdout)}


def test_push_then_pull_is_byte_identical(work, pushed):
    res = pushed["result"]
    assert res["committed"] and res["tag"] == "v1" and len(res["commit"]) == 40
    expected = set(artifact_files(pushed["art"])) | {"README.md"}
    assert set(res["uploaded"]) == expected
    out = work["root"] / "pulled-v1"
    r = run(work, "hub", "pull", f"hf://datasets/{REPO}@v1", "--out", out, "--json")
    pull = json.loads(r.stdout)
    assert pull["commit"] == res["commit"] and pull["shards_verified"] == 3
    got = files_of(out)
    src = files_of(pushed["art"])
    for name in artifact_files(pushed["art"]):
        assert got[name] == src[name], name
    lock = json.loads(got.pop("hub.lock.json"))
    assert lock["commit"] == res["commit"] and lock["revision"] == "v1" and lock["repo_id"] == REPO
    assert set(lock["files"]) == set(got) == expected  # nothing else lands in the destination
    assert b'load_dataset("' + REPO.encode() + b'")' in got["README.md"]
    # The commit message carries the params hash; the description the code revision.
    hub = work["hub"]
    repo = hub.state.get("dataset", REPO)
    msg = repo["commits"][res["commit"]]["message"]
    assert read_artifact_info(pushed["art"])["provenance"]["params_hash"][:12] in msg and "code " in msg


def test_unchanged_push_makes_no_commit(work, pushed):
    before = work["hub"].commits(REPO)
    r = run(work, "hub", "push", pushed["art"], "--repo", REPO, "--tag", "v1", "--json")
    res = json.loads(r.stdout)
    assert not res["committed"] and res["uploaded"] == [] and res["deleted"] == []
    assert res["commit"] == pushed["result"]["commit"] and res["unchanged"] == len(pushed["result"]["uploaded"])
    assert work["hub"].commits(REPO) == before
    text = run(work, "hub", "push", pushed["art"], "--repo", REPO).stdout
    assert "no commit" in text and work["hub"].commits(REPO) == before


def test_changed_push_commits_and_old_revision_stays_pullable(work, pushed):
    # A rebuild with another seed: new shards, fewer tracks (one shard fewer per split is deleted remotely).
    art2 = make_corpus_artifact(work["root"] / "v2", n_tracks=5, n_stems=2, duration_s=2.0, seed=3) / "mix"
    res2 = json.loads(run(work, "hub", "push", art2, "--repo", REPO, "--tag", "v2", "--json").stdout)
    assert res2["committed"] and res2["commit"] != pushed["result"]["commit"]
    out1, out2 = work["root"] / "again-v1", work["root"] / "at-v2"
    run(work, "hub", "pull", f"hf://datasets/{REPO}@v1", "--out", out1)
    run(work, "hub", "pull", f"hf://datasets/{REPO}@{res2['commit']}", "--out", out2)
    for out, art in ((out1, pushed["art"]), (out2, art2)):
        got, src = files_of(out), files_of(art)
        assert {n: got[n] for n in artifact_files(art)} == {n: src[n] for n in artifact_files(art)}
        assert set(got) - {"hub.lock.json", "README.md"} == set(artifact_files(art))
    # Pulling v2 into the v1 folder replaces its content (no stale file of v1 is left).
    run(work, "hub", "pull", f"hf://datasets/{REPO}@v2", "--out", out1)
    assert set(files_of(out1)) == set(files_of(out2))
    # A tag is immutable: v1 on another commit is refused with a one-line error.
    r = run(work, "hub", "push", art2, "--repo", REPO, "--tag", "v1", check=False)
    assert r.returncode == 2 and "--tag v1: already on commit" in r.stderr and "Traceback" not in r.stderr


def test_branch_push_and_pull(work, pushed):
    res = json.loads(run(work, "hub", "push", pushed["art"], "--repo", REPO, "--revision", "dev", "--json").stdout)
    assert res["revision"] == "dev"
    repo = work["hub"].state.get("dataset", REPO)
    assert repo["branches"]["dev"] == res["commit"]
    out = work["root"] / "dev"
    run(work, "hub", "pull", f"hf://datasets/{REPO}@dev", "--out", out)
    assert files_of(out)["train-000000.tar"] == (pushed["art"] / "train-000000.tar").read_bytes()


def test_pulled_folder_loads_with_plain_datasets(work, pushed):
    pytest.importorskip("datasets")
    out = work["root"] / "pulled-v1"
    if not out.exists():
        run(work, "hub", "pull", f"hf://datasets/{REPO}@v1", "--out", out)
    code = textwrap.dedent("""
        import sys, datasets
        ds = datasets.load_dataset(sys.argv[1])
        print({s: sorted(d["__key__"]) for s, d in ds.items()})
        assert "mgdata" not in sys.modules
    """)
    r = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(work["root"] / "hf-load"), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    info = read_artifact_info(pushed["art"])
    keys = eval(r.stdout)  # noqa: S307 - our own subprocess's printed dict
    assert {s: len(k) for s, k in keys.items()} == {s: v["samples"] for s, v in info["splits"].items()}


def test_resolve_artifact_pulls_once_then_works_offline(work, pushed):
    cache = work["root"] / "data-hub"
    code = textwrap.dedent("""
        import sys
        from mgdata.hub import resolve_artifact, hub_provenance
        p = resolve_artifact(sys.argv[1], sys.argv[2])
        print(p); print(hub_provenance(p)["hub_commit"])
    """)
    uri = f"hf://datasets/{REPO}@v1"
    env = work["hub"].client_env(FAKE_TOKEN) | {"HF_HOME": str(work["root"] / "hfhome")}
    r = subprocess.run(
        [sys.executable, "-c", code, uri, str(cache)], env=env, capture_output=True, text=True, timeout=300
    )
    work["outputs"].append(r.stdout + r.stderr)
    assert r.returncode == 0, r.stderr[-2000:]
    path, commit = r.stdout.split()
    assert Path(path) == cache / "datasets" / REPO / "v1" and commit == pushed["result"]["commit"]
    # Offline, with the Hub unreachable: the local copy is used as it is.
    offline = env | {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    r2 = subprocess.run(
        [sys.executable, "-c", code, uri, str(cache)], env=offline, capture_output=True, text=True, timeout=300
    )
    assert r2.returncode == 0 and r2.stdout == r.stdout, r2.stderr[-2000:]
    # A damaged local copy is not reused offline: the error names the URI.
    (Path(path) / "train-000000.tar").write_bytes(b"damaged")
    r3 = subprocess.run(
        [sys.executable, "-c", code, uri, str(cache)], env=offline, capture_output=True, text=True, timeout=300
    )
    assert r3.returncode != 0 and f"{uri}: not downloaded yet" in r3.stderr
    # Online again, it is downloaded again and verified.
    r4 = subprocess.run(
        [sys.executable, "-c", code, uri, str(cache)], env=env, capture_output=True, text=True, timeout=300
    )
    assert r4.returncode == 0 and r4.stdout == r.stdout
    assert (Path(path) / "train-000000.tar").read_bytes() == (pushed["art"] / "train-000000.tar").read_bytes()


def test_local_path_passes_through(tmp_path):
    from mgdata.hub import resolve_artifact

    assert resolve_artifact("data/corpus/mix", tmp_path) == Path("data/corpus/mix")
    assert resolve_artifact(tmp_path / "x", tmp_path / "cache") == tmp_path / "x"


def test_unknown_repo_and_revision_errors_name_the_uri(work, pushed):
    r = run(work, "hub", "pull", "hf://datasets/mgdata-test/nope@v1", "--out", work["root"] / "n1", check=False)
    assert r.returncode == 2 and "hf://datasets/mgdata-test/nope@v1: no dataset repo" in r.stderr
    r = run(work, "hub", "pull", f"hf://datasets/{REPO}@v9", "--out", work["root"] / "n2", check=False)
    assert r.returncode == 2 and "has no revision 'v9'" in r.stderr
    assert not (work["root"] / "n1").exists() and not (work["root"] / "n2").exists()


def test_interrupted_push_resumes_without_resending_uploaded_objects(work):
    # An "interrupted" push: the LFS object of one shard reached the server, no commit was made.
    art = make_corpus_artifact(work["root"] / "v3", n_tracks=6, n_stems=2, duration_s=2.0, seed=5) / "mix"
    first = sorted(art.glob("*.tar"))[0]
    code = textwrap.dedent("""
        import sys
        from huggingface_hub import CommitOperationAdd, HfApi
        api = HfApi()
        api.create_repo(sys.argv[1], repo_type="dataset", exist_ok=True)
        api.preupload_lfs_files(sys.argv[1], [CommitOperationAdd(sys.argv[3], sys.argv[2])], repo_type="dataset")
    """)
    env = work["hub"].client_env(FAKE_TOKEN) | {"HF_HOME": str(work["root"] / "hfhome")}
    repo = "mgdata-test/resume"
    r = subprocess.run(
        [sys.executable, "-c", code, repo, str(first), first.name], env=env, capture_output=True, text=True, timeout=300
    )
    work["outputs"].append(r.stdout + r.stderr)
    assert r.returncode == 0, r.stderr[-2000:]
    uploads = work["hub"].state.lfs_uploads
    before = list(uploads)
    assert len(work["hub"].commits(repo)) == 1  # only the repo's initial commit
    res = json.loads(run(work, "hub", "push", art, "--repo", repo, "--json").stdout)
    assert res["committed"] and first.name in res["uploaded"]
    sent = uploads[len(before) :]
    assert len(sent) == len(list(art.glob("*.tar"))) - 1  # every shard but the one already uploaded
    out = work["root"] / "resumed"
    run(work, "hub", "pull", f"hf://datasets/{repo}@{res['commit']}", "--out", out)
    assert (out / first.name).read_bytes() == first.read_bytes()


def test_token_never_leaks(work, pushed):
    # Runs last in this module: every output so far, and every file written anywhere in the work tree.
    assert work["outputs"] and work["hub"].state.auth_requests > 0  # the token was sent (as a header) ...
    for out in work["outputs"]:
        assert FAKE_TOKEN not in out
    hits = []
    for p in work["root"].rglob("*"):
        if p.is_file() and FAKE_TOKEN.encode() in p.read_bytes():
            hits.append(str(p))
    assert hits == []  # ... but never printed or written
    assert FAKE_TOKEN not in json.dumps(work["hub"].state.repos)
    assert "HF_TOKEN" not in os.environ or os.environ["HF_TOKEN"] != FAKE_TOKEN
    shutil.rmtree(work["root"] / "hfhome", ignore_errors=True)

"""Pull a published artifact from the Hub and use it as a pipeline input.

``hf://datasets/ORG/NAME@REVISION[/path]`` names a dataset repo, a revision (branch,
tag or commit sha; ``main`` when omitted) and optionally a folder in it. A pull

1. resolves the revision to its commit sha (so a branch that moves during the
   download cannot mix two versions),
2. downloads that commit with ``snapshot_download`` into a staging folder beside
   the destination (a rerun after an interruption keeps the files already there),
3. checks every path (no absolute path, no ``..``), every tar's members (regular
   files only: no absolute path, ``..``, symlink or hard link; the error names the
   member), every shard against its ``.tar.idx`` sha256 and every side file
   against ``artifact.json``,
4. assembles the complete new folder (files and ``hub.lock.json``: repo,
   requested revision, resolved commit, sha256 and size of every file; no
   timestamps) beside the destination and only then renames it into place, so an
   interrupted or failed pull leaves the destination as it was.

Network failures are retried (5xx, 429, timeouts, cut transfers) with exponential
backoff as :class:`~mgdata.hub.net.RetryPolicy` says; what is left is one line
naming the endpoint and what to check (:class:`~mgdata.hub.net.HubNetworkError`).

:func:`resolve_artifact` is what stages call: a local path passes through; a
``hf://`` URI is pulled once into ``cache_root`` and then reused from the local
copy, with no network, as long as its files match the lock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mgdata.errors import InputError, MgdataError, ShardError
from mgdata.hub.files import LOCK_NAME, check_repo_path, check_tar_members, read_lock
from mgdata.hub.net import RetryPolicy, endpoint_of, hub_session, with_retries
from mgdata.store import ARTIFACT_JSON, INDEX_SUFFIX, sha256_file, verify_shard

URI_RE = re.compile(
    r"^hf://(?P<type>datasets|models|spaces)/(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*?)"
    r"(?:@(?P<rev>[^/]+))?(?:/(?P<path>.+?))?/?$"
)
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class HubURI:
    """A parsed ``hf://`` URI.

    Attributes:
        repo_type: ``dataset`` (or ``model``/``space``).
        repo_id: ``ORG/NAME``.
        revision: Branch, tag or commit sha (``main`` when the URI has none).
        path: Folder inside the repo (``""`` for the root).
        uri: The URI as written.
    """

    repo_type: str
    repo_id: str
    revision: str
    path: str
    uri: str

    @property
    def pinned(self) -> bool:
        """True when the revision is a full commit sha."""
        return bool(SHA_RE.match(self.revision))

    def local_name(self) -> str:
        """A relative folder name unique to (type, repo, revision, path)."""
        rev = self.revision.replace("/", "--")
        return "/".join(p for p in (f"{self.repo_type}s", self.repo_id, rev, self.path) if p)


def is_hub_uri(value: Any) -> bool:
    """Whether ``value`` is a string starting with ``hf://``."""
    return isinstance(value, str) and value.startswith("hf://")


def parse_hub_uri(uri: str) -> HubURI:
    """Parse ``hf://datasets/ORG/NAME[@REVISION][/path]``.

    Raises:
        InputError: Not of that form, or an unsafe path (names the URI).
    """
    m = URI_RE.match(uri or "")
    if not m:
        raise InputError(uri, "expected hf://datasets/ORG/NAME@REVISION[/path]")
    path = m["path"] or ""
    if path:
        check_repo_path(path, where=uri)
    return HubURI(repo_type=m["type"][:-1], repo_id=m["repo"], revision=m["rev"] or "main", path=path, uri=uri)


@dataclass
class PullResult:
    """What :func:`pull_artifact` did.

    Attributes:
        uri: The URI pulled.
        out_dir: Destination folder.
        commit: The resolved commit sha.
        files: Number of files in the destination (the lock excluded).
        shards_verified: Shards checked against their indexes.
        reused: True when the local copy matched the lock and nothing was downloaded.
    """

    uri: str
    out_dir: str
    commit: str
    files: int
    shards_verified: int = 0
    reused: bool = False
    file_list: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)


def _payload(folder: Path) -> list[Path]:
    """Everything downloaded under ``folder`` except huggingface_hub's own ``.cache`` bookkeeping."""
    return [p for p in sorted(folder.rglob("*")) if p.relative_to(folder).parts[0] != ".cache"]


def _verify_folder(folder: Path) -> int:
    """Check paths, tar members, shards and side files of a downloaded folder; returns shards verified."""
    shards = 0
    for path in _payload(folder):
        rel = path.relative_to(folder).as_posix()
        check_repo_path(rel, where=str(folder))
        if path.is_symlink():
            raise InputError(str(path), "is a symlink: refused")
        if path.is_file() and path.suffix == ".tar":
            check_tar_members(path)
            if path.with_name(path.name + INDEX_SUFFIX).exists():
                if verify_shard(path) is None:
                    raise ShardError(str(path), "does not match its .tar.idx (sha256 or size): corrupt download")
                shards += 1
    info_path = folder / ARTIFACT_JSON
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        for split in info.get("splits", {}).values():
            for shard in split.get("shards", []):
                if not (folder / shard).is_file():
                    raise ShardError(str(folder / shard), "listed in artifact.json but not in the pulled revision")
        for name, rec in (info.get("files") or {}).items():
            p = folder / check_repo_path(name, where=str(info_path))
            if not p.is_file() or p.stat().st_size != rec.get("size") or sha256_file(p) != rec.get("sha256"):
                raise ShardError(str(p), "side file missing or not matching the sha256 in artifact.json")
    return shards


def _lock_matches(folder: Path, hub: HubURI, *, verify: bool) -> dict[str, Any] | None:
    lock = read_lock(folder)
    if not lock or any(
        lock.get(k) != v
        for k, v in (
            ("repo_type", hub.repo_type),
            ("repo_id", hub.repo_id),
            ("revision", hub.revision),
            ("path", hub.path),
        )
    ):
        return None
    for name, rec in lock.get("files", {}).items():
        p = folder / name
        if not p.is_file() or p.stat().st_size != rec["size"] or (verify and sha256_file(p) != rec["sha256"]):
            return None
    return lock


def pull_artifact(
    uri: str,
    out_dir: str | Path,
    *,
    api: Any = None,
    force: bool = False,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PullResult:
    """Download ``uri`` at its revision into ``out_dir``, verify it and write ``hub.lock.json``.

    Args:
        uri: ``hf://datasets/ORG/NAME@REVISION[/path]``.
        out_dir: Destination; holds exactly the repo folder's files plus the lock afterwards,
            or is left untouched when the pull fails.
        api: An ``huggingface_hub.HfApi`` (default: a new one, token from the environment).
        force: Download even if the folder already matches its lock.
        policy: Retries and timeouts (default: :class:`~mgdata.hub.net.RetryPolicy`).
        sleep: Waits between retries (tests pass a no-op).

    Returns:
        :class:`PullResult`.

    Raises:
        InputError: Bad URI, unknown repo/revision/path, or an unsafe path.
        ShardError: A tar with an unsafe member, or a shard/side file that does
            not match its record (names it).
        HubNetworkError: The Hub unreachable, or failing past the retries (names the endpoint).
    """
    with hub_session(policy or RetryPolicy()):
        return _pull(uri, Path(out_dir), api=api, force=force, policy=policy or RetryPolicy(), sleep=sleep)


def _pull(uri: str, out_dir: Path, *, api: Any, force: bool, policy: RetryPolicy, sleep) -> PullResult:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    hub = parse_hub_uri(uri)
    if not force and (lock := _lock_matches(out_dir, hub, verify=True)):
        return PullResult(
            uri, str(out_dir), lock["commit"], len(lock["files"]), reused=True, file_list=sorted(lock["files"])
        )
    if out_dir.is_dir() and any(out_dir.iterdir()) and read_lock(out_dir) is None:
        # The pull replaces the folder as a whole: never over a folder it did not write.
        raise InputError(str(out_dir), f"exists and is not a pulled folder (no {LOCK_NAME}): use a new or empty --out")
    api = api or HfApi()
    endpoint = endpoint_of(api)

    def retried(fn):
        return with_retries(fn, endpoint=endpoint, action=f"pull {uri}", policy=policy, sleep=sleep)

    try:
        commit = retried(lambda: api.repo_info(hub.repo_id, repo_type=hub.repo_type, revision=hub.revision).sha)
    except RepositoryNotFoundError:
        raise InputError(uri, f"no {hub.repo_type} repo {hub.repo_id} on {api.endpoint} (or no access)") from None
    except RevisionNotFoundError:
        raise InputError(uri, f"{hub.repo_id} has no revision {hub.revision!r}") from None
    staging = out_dir.parent / f".{out_dir.name}.hub-partial"
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        # A retry resumes in the same staging folder: files already complete are not fetched again.
        retried(
            lambda: snapshot_download(
                hub.repo_id,
                repo_type=hub.repo_type,
                revision=commit,
                local_dir=staging,
                allow_patterns=[f"{hub.path}/*"] if hub.path else None,
                ignore_patterns=[".gitattributes"],
                endpoint=api.endpoint,
            )
        )
    except HfHubHTTPError as exc:
        raise MgdataError(f"{uri}: download failed ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    src = staging / hub.path if hub.path else staging
    if not src.is_dir() or not _payload(src):
        raise InputError(uri, f"no files under {hub.path or '/'} at {hub.revision} ({commit})")
    shards = _verify_folder(src)
    files = {p.relative_to(src).as_posix(): p for p in _payload(src) if p.is_file()}
    # The new folder is assembled complete (files and lock) beside the destination, then renamed into place:
    # until that rename the destination is untouched, whatever fails or is interrupted before it.
    fresh = out_dir.parent / f".{out_dir.name}.hub-new"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    records = {}
    for name, p in files.items():
        records[name] = {"sha256": sha256_file(p), "size": p.stat().st_size}
        dest = fresh / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, dest)
    lock = {
        "uri": uri,
        "repo_type": hub.repo_type,
        "repo_id": hub.repo_id,
        "revision": hub.revision,
        "path": hub.path,
        "commit": commit,
        "files": records,
    }
    (fresh / LOCK_NAME).write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    _swap_in(fresh, out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    return PullResult(uri, str(out_dir), commit, len(records), shards_verified=shards, file_list=sorted(records))


def _swap_in(fresh: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the complete folder ``fresh`` (two renames on one filesystem).

    Between the renames ``out_dir`` is briefly absent (POSIX has no portable directory
    exchange); the old copy is kept as ``.<name>.hub-old`` until the new one is in place,
    and a rerun finds a missing or lock-less folder and pulls again.
    """
    old = out_dir.parent / f".{out_dir.name}.hub-old"
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(fresh, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def resolve_artifact(path_or_uri: str | Path, cache_root: str | Path, *, verify: bool = True) -> Path:
    """The local folder of a stage input: a path passes through, ``hf://`` is pulled once and reused.

    Args:
        path_or_uri: A local artifact path, or ``hf://datasets/ORG/NAME@REVISION[/path]``.
        cache_root: Where pulled artifacts live (a DVC-tracked workspace folder,
            e.g. ``data/hub``); the artifact goes to
            ``cache_root/datasets/ORG/NAME/REVISION[/path]``.
        verify: Re-hash the local copy against its lock before reusing it
            (a mismatch downloads again).

    Returns:
        The local folder (``path_or_uri`` itself for a local path).

    Raises:
        InputError / ShardError: As :func:`pull_artifact`; offline
            (``HF_HUB_OFFLINE=1``) without a local copy is an InputError naming the URI.
    """
    if not is_hub_uri(str(path_or_uri)) or isinstance(path_or_uri, Path):
        return Path(path_or_uri)
    hub = parse_hub_uri(str(path_or_uri))
    dest = Path(cache_root) / hub.local_name()
    if _lock_matches(dest, hub, verify=verify):
        return dest
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise InputError(
            hub.uri,
            f"not downloaded yet ({dest} has no matching {LOCK_NAME}) and HF_HUB_OFFLINE "
            "is set: run once online, or `mgdata hub pull URI --out DIR`",
        )
    pull_artifact(hub.uri, dest, force=True)
    return dest


def hub_provenance(folder: str | Path) -> dict[str, str]:
    """``{"hub_uri", "hub_repo", "hub_revision", "hub_commit"}`` of a pulled folder (``{}`` for a local artifact).

    Stages add this to the provenance ``extra`` of what they build from a pulled input.
    """
    lock = read_lock(folder)
    if not lock:
        return {}
    return {
        "hub_uri": lock["uri"],
        "hub_repo": lock["repo_id"],
        "hub_revision": lock["revision"],
        "hub_commit": lock["commit"],
    }

"""``push_artifact``: publish an artifact folder to a Hugging Face dataset repo, idempotently.

Before committing, the remote tree at the target branch is listed and compared
file by file with the local artifact (LFS files by sha256 oid and size, regular
files by git blob id): only changed files are uploaded, files the artifact no
longer has are deleted, and an unchanged artifact makes no commit at all. An
interrupted push is resumed by running it again: LFS objects that reached the
server are not uploaded twice (the LFS batch answer omits their upload action),
and nothing is visible on the branch until the single commit lands.

Every Hub call is retried on transient network failures (5xx, 429, timeouts,
resets) as :class:`~mgdata.hub.net.RetryPolicy` says, then fails with one line
naming the endpoint (:class:`~mgdata.hub.net.HubNetworkError`). Retrying the
commit is safe: the Hub applies a commit whole or not at all, and a retry whose
first attempt did land finds the branch already holding it (the commit names
its parent, so it cannot land twice on top of itself).

The token comes from ``HF_TOKEN`` or the ``hf auth login`` store, through
``huggingface_hub``; mgdata never reads, prints or writes it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mgdata.errors import InputError, MgdataError
from mgdata.hub.files import CARD_NAME, LocalFile, artifact_files
from mgdata.hub.net import RetryPolicy, endpoint_of, hub_session, with_retries
from mgdata.store import read_artifact_info

REPO_TYPE = "dataset"
# Present in every new Hub repo; not part of the artifact, never deleted by a push.
KEEP_REMOTE = (".gitattributes",)


@dataclass
class PushResult:
    """What :func:`push_artifact` did.

    Attributes:
        repo_id: ``ORG/NAME``.
        revision: The branch pushed to.
        commit: The branch head after the push (the new commit, or the unchanged head).
        committed: Whether a commit was made.
        uploaded: Repo paths added or changed.
        deleted: Repo paths removed (no longer in the artifact).
        unchanged: Number of files already identical on the Hub.
        tag: The tag created or confirmed, if any.
        url: The repo URL.
    """

    repo_id: str
    revision: str
    commit: str
    committed: bool
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    tag: str | None = None
    url: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)


def code_revision(repo_dir: str | Path | None = None) -> str:
    """The git commit of the mgdata code (``+dirty`` when tracked files differ), or ``unknown``."""
    repo_dir = Path(repo_dir) if repo_dir else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "") if sha else "unknown"


def check_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` with Hub-legal characters, else InputError naming it."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", repo_id or "") or ".." in repo_id:
        raise InputError("--repo", f"{repo_id!r} is not a Hub repo id of the form ORG/NAME")
    return repo_id


def local_files(
    artifact_dir: str | Path, *, card: bool = True, name: str | None = None, repo_id: str | None = None
) -> dict[str, LocalFile]:
    """Every file the artifact publishes, with digests; the rendered card as ``README.md`` when ``card``
    (its loading snippet names ``repo_id``)."""
    files = {n: LocalFile.from_path(n, p) for n, p in artifact_files(artifact_dir).items()}
    if card:
        from mgdata.cards import render_card

        files[CARD_NAME] = LocalFile.from_bytes(
            CARD_NAME, render_card(artifact_dir, name=name, load_path=repo_id).encode()
        )
    return dict(sorted(files.items()))


def diff_remote(local: dict[str, LocalFile], remote: dict[str, Any]) -> tuple[list[str], list[str], int]:
    """``(to_upload, to_delete, unchanged)`` comparing local files with remote tree entries (RepoFile objects)."""
    upload, unchanged = [], 0
    for name, lf in local.items():
        entry = remote.get(name)
        if entry is None:
            same = False
        elif entry.lfs is not None:
            same = entry.lfs.sha256 == lf.sha256 and entry.lfs.size == lf.size
        else:
            same = entry.blob_id == lf.git_oid
        if same:
            unchanged += 1
        else:
            upload.append(name)
    delete = sorted(n for n in remote if n not in local and n not in KEEP_REMOTE)
    return upload, delete, unchanged


def push_artifact(
    artifact_dir: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    tag: str | None = None,
    private: bool = False,
    card: bool = True,
    name: str | None = None,
    api: Any = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Publish ``artifact_dir`` to the dataset repo ``repo_id``.

    Args:
        artifact_dir: A complete artifact (``artifact.json``); shards and side
            files are verified against their records first.
        repo_id: ``ORG/NAME``; created (``exist_ok``) as a dataset repo.
        revision: Branch to commit to (default ``main``); created from ``main``
            when missing.
        tag: Tag to put on the resulting commit. An existing tag on the same
            commit is accepted; on another commit it is an error.
        private: Create the repo private (only when it does not exist yet).
        card: Upload the rendered dataset card as ``README.md``.
        name: Pretty name for the card.
        api: An ``huggingface_hub.HfApi`` (default: a new one, token from the environment).
        policy: Retries and timeouts (default: :class:`~mgdata.hub.net.RetryPolicy`).
        sleep: Waits between retries (tests pass a no-op).

    Returns:
        :class:`PushResult`.

    Raises:
        MgdataError: Incomplete or corrupt artifact, bad repo id, or a tag that
            names another commit.
        HubNetworkError: The Hub unreachable, or failing past the retries (names the
            endpoint); the branch is then as it was before the push.
    """
    check_repo_id(repo_id)
    artifact_dir = Path(artifact_dir)
    info = read_artifact_info(artifact_dir)
    local = local_files(artifact_dir, card=card, name=name, repo_id=repo_id)
    policy = policy or RetryPolicy()
    with hub_session(policy):
        return _push(artifact_dir, repo_id, info, local, revision, tag, private, api=api, policy=policy, sleep=sleep)


def _push(artifact_dir, repo_id, info, local, revision, tag, private, *, api, policy, sleep) -> PushResult:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    api = api or HfApi()
    branch = revision or "main"
    endpoint = endpoint_of(api)

    def retried(fn):
        return with_retries(fn, endpoint=endpoint, action=f"push to {repo_id}", policy=policy, sleep=sleep)

    def tree_of() -> list[Any]:
        return list(api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=branch, recursive=True))

    url = str(retried(lambda: api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)))
    try:
        tree = retried(tree_of)
    except RevisionNotFoundError:
        retried(lambda: api.create_branch(repo_id, repo_type=REPO_TYPE, branch=branch, exist_ok=True))
        tree = retried(tree_of)
    remote = {e.path: e for e in tree if hasattr(e, "blob_id")}
    upload, delete, unchanged = diff_remote(local, remote)
    prov = info.get("provenance", {})
    committed = bool(upload or delete)
    parent = retried(lambda: api.repo_info(repo_id, repo_type=REPO_TYPE, revision=branch).sha)
    if committed:
        code = code_revision()
        ops = [CommitOperationAdd(path_in_repo=n, path_or_fileobj=local[n].source or local[n].data) for n in upload]
        ops += [CommitOperationDelete(path_in_repo=n) for n in delete]
        message = (
            f"mgdata {prov.get('builder', 'artifact')}: params {str(prov.get('params_hash', ''))[:12]}, "
            f"code {code[:12]}"
        )
        description = "\n".join(
            [
                f"artifact: {artifact_dir.name}",
                f"builder: {prov.get('builder', '')}",
                f"params_hash: {prov.get('params_hash', '')}",
                f"fingerprint: {info.get('fingerprint', '')}",
                f"code_revision: {code}",
                f"mgdata_version: {prov.get('mgdata_version', '')}",
                f"source: {prov.get('source', '')} {prov.get('source_version', '')}",
            ]
        )
        head = retried(lambda: _commit_once(api, repo_id, ops, branch, parent, local, (message, description)))
    else:
        head = parent
    if tag:
        refs = retried(lambda: api.list_repo_refs(repo_id, repo_type=REPO_TYPE))
        existing = {t.name: t.target_commit for t in refs.tags}
        if tag in existing and existing[tag] != head:
            raise MgdataError(
                f"--tag {tag}: already on commit {existing[tag]} of {repo_id}, not on {head}: "
                "tags are immutable, choose a new one"
            )
        if tag not in existing:
            retried(lambda: api.create_tag(repo_id, repo_type=REPO_TYPE, tag=tag, revision=head, exist_ok=True))
    return PushResult(
        repo_id=repo_id,
        revision=branch,
        commit=head,
        committed=committed,
        uploaded=upload,
        deleted=delete,
        unchanged=unchanged,
        tag=tag,
        url=url,
    )


def _commit_once(
    api: Any,
    repo_id: str,
    ops: list[Any],
    branch: str,
    parent: str,
    local: dict[str, LocalFile],
    message: tuple[str, str],
) -> str:
    """Create the commit on top of ``parent``; if an earlier attempt already landed it, return that head.

    A commit whose answer was lost (reset, timeout, 5xx after the write) may be on the
    branch already. If the branch moved and now holds exactly the artifact, that is
    this push; if it holds something else, another writer pushed meanwhile, and the
    commit is refused rather than overwriting it (``parent_commit`` makes the Hub
    refuse it too).
    """
    head = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=branch).sha
    if head != parent:
        tree = api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=branch, recursive=True)
        upload, delete, _ = diff_remote(local, {e.path: e for e in tree if hasattr(e, "blob_id")})
        if not upload and not delete:
            return head
        raise MgdataError(
            f"{repo_id}@{branch}: moved from {parent[:12]} to {head[:12]} during the push (another writer?): "
            "nothing committed; rerun the push"
        )
    return api.create_commit(
        repo_id,
        ops,
        repo_type=REPO_TYPE,
        revision=branch,
        commit_message=message[0],
        commit_description=message[1],
        parent_commit=parent,
    ).oid

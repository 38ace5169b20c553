"""``push_artifact``: publish an artifact folder to a Hugging Face dataset repo, idempotently.

Before committing, the remote tree at the target branch is listed and compared
file by file with the local artifact (LFS files by sha256 oid and size, regular
files by git blob id): only changed files are uploaded, files the artifact no
longer has are deleted, and an unchanged artifact makes no commit at all. An
interrupted push is resumed by running it again: LFS objects that reached the
server are not uploaded twice (the LFS batch answer omits their upload action),
and nothing is visible on the branch until the single commit lands.

The token comes from ``HF_TOKEN`` or the ``hf auth login`` store, through
``huggingface_hub``; mgdata never reads, prints or writes it.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mgdata.errors import InputError, MgdataError
from mgdata.hub.files import CARD_NAME, LocalFile, artifact_files
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

    Returns:
        :class:`PushResult`.

    Raises:
        MgdataError: Incomplete or corrupt artifact, bad repo id, or a tag that
            names another commit.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    check_repo_id(repo_id)
    artifact_dir = Path(artifact_dir)
    info = read_artifact_info(artifact_dir)
    local = local_files(artifact_dir, card=card, name=name, repo_id=repo_id)
    api = api or HfApi()
    branch = revision or "main"
    url = str(api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True))
    try:
        tree = list(api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=branch, recursive=True))
    except RevisionNotFoundError:
        api.create_branch(repo_id, repo_type=REPO_TYPE, branch=branch, exist_ok=True)
        tree = list(api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=branch, recursive=True))
    remote = {e.path: e for e in tree if hasattr(e, "blob_id")}
    upload, delete, unchanged = diff_remote(local, remote)
    prov = info.get("provenance", {})
    committed = bool(upload or delete)
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
        ci = api.create_commit(
            repo_id, ops, repo_type=REPO_TYPE, revision=branch, commit_message=message, commit_description=description
        )
        head = ci.oid
    else:
        head = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=branch).sha
    if tag:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
        existing = {t.name: t.target_commit for t in refs.tags}
        if tag in existing and existing[tag] != head:
            raise MgdataError(
                f"--tag {tag}: already on commit {existing[tag]} of {repo_id}, not on {head}: "
                "tags are immutable, choose a new one"
            )
        if tag not in existing:
            api.create_tag(repo_id, repo_type=REPO_TYPE, tag=tag, revision=head)
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

"""A loopback Hugging Face Hub server for tests (stdlib ``http.server`` in a thread).

It speaks the subset of the Hub HTTP protocol that ``huggingface_hub`` (2.x, with
``HF_HUB_DISABLE_XET=1``) uses to create a repo, upload (preupload, LFS batch +
upload + verify, NDJSON commit), list a tree, read revision info, resolve files
(HEAD/GET), and manage branches and tags. Repos live in a folder: file contents
are stored once by sha256 under ``objects/``, every commit is an immutable tree
snapshot with a 40-hex sha, and refs (branches, tags) point at commits, so an old
revision stays resolvable after newer pushes.

Point a client at it with ``HF_ENDPOINT=server.url``, ``HF_HUB_DISABLE_XET=1``
(set before ``huggingface_hub`` is imported) and any ``HF_TOKEN``. The server
records the ``Authorization`` headers it saw only as a count, never their value.

Network faults can be injected for the next matching requests (:meth:`HubServer.fail`):
an HTTP status (503, 429 with ``Retry-After``), a connection closed with no answer,
a download or upload cut mid-transfer, or no answer at all (a client timeout).
Every request is logged in ``state.requests`` as ``(method, path)``, so a test can
count attempts instead of timing them.

Usage::

    with HubServer(tmp_path / "hub") as hub:
        env = hub.client_env(token="hf_fake...")   # for a subprocess
        hub.fail("GET", r"/api/datasets/.*/revision/", status=503)   # once, then served normally
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# Files the real Hub stores in LFS by default (.gitattributes of a new repo) or that look binary.
LFS_SUFFIXES = (
    ".tar",
    ".parquet",
    ".npy",
    ".npz",
    ".flac",
    ".wav",
    ".mp3",
    ".bin",
    ".pt",
    ".safetensors",
    ".zip",
    ".gz",
    ".arrow",
)
LFS_MIN_SIZE = 10 * 1024 * 1024
REPO_TYPES = ("model", "dataset", "space")
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob with this content (what the Hub reports as a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    """The git-lfs pointer file stored in git for an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@dataclass
class Fault:
    """A fault served instead of the normal answer to the next ``times`` requests matching ``method`` and ``path``.

    Attributes:
        method: ``GET``, ``HEAD``, ``POST``, ``PUT`` or ``*``.
        path: A regex searched in the request path.
        status: Answer this HTTP status (with a JSON error body).
        retry_after: ``Retry-After`` header value (seconds) of that answer.
        action: ``"status"``, ``"close"`` (drop the connection with no answer), ``"close-after"``
            (handle the request, e.g. apply a commit, then drop the connection instead of
            answering: a lost answer), ``"cut"`` (a download: headers and half the body, then
            drop; an upload: drop after reading half of it) or ``"hang"`` (no answer until the
            server stops: the client times out).
        times: How many matching requests get the fault (-1: all).
    """

    method: str
    path: str
    action: str = "status"
    status: int = 503
    retry_after: str | None = None
    times: int = 1
    hits: int = 0


class HubState:
    """Repos, commits, refs and stored objects, persisted as ``state.json`` in ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.state_path = self.root / "state.json"
        self.repos: dict[str, Any] = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.auth_requests = 0
        self.lfs_uploads: list[str] = []  # oids PUT to the LFS upload endpoint, in order
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.faults: list[Fault] = []
        self.stopping = threading.Event()  # releases "hang" faults

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request (consumed), else None."""
        with self.lock:
            for f in self.faults:
                if f.times != 0 and f.method in (method, "*") and re.search(f.path, path):
                    f.times -= 1 if f.times > 0 else 0
                    f.hits += 1
                    return f
        return None

    # ---- storage
    def put_object(self, data: bytes) -> str:
        oid = hashlib.sha256(data).hexdigest()
        path = self.objects / oid
        if not path.exists():
            tmp = path.with_name(oid + f".tmp{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return oid

    def has_object(self, oid: str, size: int | None = None) -> bool:
        path = self.objects / oid
        return path.exists() and (size is None or path.stat().st_size == size)

    def object_path(self, oid: str) -> Path:
        return self.objects / oid

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.repos, indent=1, sort_keys=True))
        os.replace(tmp, self.state_path)

    # ---- repos
    @staticmethod
    def key(repo_type: str, repo_id: str) -> str:
        return f"{repo_type}s/{repo_id}"

    def get(self, repo_type: str, repo_id: str) -> dict[str, Any] | None:
        return self.repos.get(self.key(repo_type, repo_id))

    def create(self, repo_type: str, repo_id: str, private: bool) -> bool:
        """Create an empty repo with an initial commit on ``main``; False if it exists."""
        with self.lock:
            if self.key(repo_type, repo_id) in self.repos:
                return False
            repo = {"private": private, "commits": {}, "branches": {}, "tags": {}}
            self.repos[self.key(repo_type, repo_id)] = repo
            gitattributes = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
            sha = self._commit(repo, None, {".gitattributes": self._regular_entry(gitattributes)}, "initial commit")
            repo["branches"]["main"] = sha
            self.save()
            return True

    def _regular_entry(self, data: bytes) -> dict[str, Any]:
        return {"size": len(data), "oid": git_blob_sha1(data), "sha256": self.put_object(data), "lfs": None}

    def _commit(self, repo: dict[str, Any], parent: str | None, files: dict[str, Any], message: str) -> str:
        body = json.dumps(
            {"parent": parent, "files": files, "message": message, "n": len(repo["commits"])}, sort_keys=True
        ).encode()
        sha = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()
        repo["commits"][sha] = {"parent": parent, "files": files, "message": message, "time": time.time()}
        return sha

    def resolve(self, repo: dict[str, Any], revision: str) -> str | None:
        """Commit sha of a branch, tag or (full) commit sha."""
        revision = unquote(revision)
        if revision in repo["branches"]:
            return repo["branches"][revision]
        if revision in repo["tags"]:
            return repo["tags"][revision]
        if revision.startswith("refs/heads/"):
            return repo["branches"].get(revision[len("refs/heads/") :])
        if revision in repo["commits"]:
            return revision
        return None

    def commit(self, repo: dict[str, Any], branch: str, ops: list[dict[str, Any]]) -> tuple[str | None, str]:
        """Apply NDJSON operations on top of ``branch``; returns ``(sha, error)``."""
        with self.lock:
            parent = repo["branches"].get(branch)
            if parent is None:
                return None, f"Invalid rev id: {branch}"
            header = next((op["value"] for op in ops if op["key"] == "header"), {})
            if header.get("parentCommit") and header["parentCommit"] != parent:
                return None, "parent commit is not the head of the branch"
            files = dict(repo["commits"][parent]["files"])
            for op in ops:
                value = op.get("value", {})
                if op["key"] == "file":
                    files[value["path"]] = self._regular_entry(base64.b64decode(value["content"]))
                elif op["key"] == "lfsFile":
                    if not self.has_object(value["oid"], value["size"]):
                        return None, f"LFS object {value['oid']} of {value['path']} was not uploaded"
                    pointer = lfs_pointer(value["oid"], value["size"])
                    files[value["path"]] = {
                        "size": value["size"],
                        "oid": git_blob_sha1(pointer),
                        "sha256": value["oid"],
                        "lfs": {"oid": value["oid"], "size": value["size"], "pointerSize": len(pointer)},
                    }
                elif op["key"] == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        return None, f"A file with this name doesn't exist: {value['path']}"
                elif op["key"] == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    for path in [p for p in files if p.startswith(prefix)]:
                        del files[path]
            sha = self._commit(repo, parent, files, header.get("summary", ""))
            repo["branches"][branch] = sha
            self.save()
            return sha, ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mgdata-hub-test/1"
    state: HubState
    url: str

    # ------------------------------------------------------------------ plumbing
    def log_message(self, fmt, *args):  # noqa: D102 - quiet: tests read their own output
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        head: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        # A HEAD answer must have no body (the client otherwise waits for it).
        body = b"" if head else json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _route(self, method: str) -> None:
        if self.headers.get("Authorization"):
            self.state.auth_requests += 1
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        self.state.requests.append((method, path))
        self._cut = False
        fault = self.state.take_fault(method, path)
        if fault is not None and self._serve_fault(fault, method):
            return
        lost = fault is not None and fault.action == "close-after"
        if lost:
            real, self.wfile = self.wfile, io.BytesIO()  # the answer is written nowhere
        try:
            self._dispatch(method, path, query)
        except Exception as exc:  # noqa: BLE001 - a test server reports bugs as 500 instead of hanging the client
            self._error(500, "ServerError", f"{type(exc).__name__}: {exc}", head=method == "HEAD")
        if lost:
            self.wfile = real
            self._drop()

    def _serve_fault(self, fault: Fault, method: str) -> bool:
        """Serve ``fault``; True when the request is answered (or dropped) by it."""
        if fault.action == "status":
            self._body()
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            body = b"" if method == "HEAD" else json.dumps({"error": f"injected {fault.status}"}).encode()
            self._send(fault.status, body, headers, head=True)
            if body:
                self.wfile.write(body)
            return True
        if fault.action == "hang":
            self.state.stopping.wait(30)
            self.close_connection = True
            return True
        if fault.action == "close" or (fault.action == "cut" and method in ("PUT", "POST")):
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n // 2)
            self._drop()
            return True
        if fault.action == "cut":
            self._cut = True  # a download: _resolve sends the headers and half the body, then drops
        return False

    def _drop(self) -> None:
        """Close the connection abruptly (the client sees a reset / disconnect)."""
        import socket

        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):  # noqa: N802, D102
        self._route("GET")

    def do_HEAD(self):  # noqa: N802, D102
        self._route("HEAD")

    def do_POST(self):  # noqa: N802, D102
        self._route("POST")

    def do_PUT(self):  # noqa: N802, D102
        self._route("PUT")

    # ------------------------------------------------------------------ routes
    def _repo(self, repo_type: str, repo_id: str, head: bool = False) -> dict[str, Any] | None:
        repo = self.state.get(repo_type, repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository not found: {repo_id}", head=head)
        return repo

    def _commit_of(self, repo: dict[str, Any], revision: str, head: bool = False) -> str | None:
        sha = self.state.resolve(repo, revision)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}", head=head)
        return sha

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        st = self.state
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo()
        if method == "POST" and path == "/api/validate-yaml":
            self._body()
            return self._json(200, {"errors": [], "warnings": []})
        if method == "PUT" and path.startswith("/lfs-upload/"):
            oid = path.rsplit("/", 1)[1]
            data = self._body()
            if hashlib.sha256(data).hexdigest() != oid:
                return self._error(400, "BadRequest", f"uploaded bytes do not hash to {oid}")
            st.lfs_uploads.append(st.put_object(data))
            return self._send(200)
        if method == "POST" and path.startswith("/lfs-verify/"):
            req = json.loads(self._body() or b"{}")
            if not st.has_object(req.get("oid", ""), req.get("size")):
                return self._error(404, "EntryNotFound", "object not uploaded")
            return self._json(200, {"success": True})
        m = re.match(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$", path)
        if method == "POST" and m:
            return self._lfs_batch(m[2])
        m = re.match(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(\w[\w-]*)(?:/(.*))?)?$", path)
        if m:
            return self._api(method, m[1][:-1], m[2], m[3], m[4], query)
        m = re.match(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m and method in ("GET", "HEAD"):
            return self._resolve(method, (m[1] or "models")[:-1], m[2], m[3], unquote(m[4]))
        self._body()
        return self._error(404, "EntryNotFound", f"{method} {path}: not found", head=method == "HEAD")

    def _create_repo(self) -> None:
        req = json.loads(self._body() or b"{}")
        repo_type = req.get("type") or "model"
        repo_id = f"{req.get('organization') or 'user'}/{req['name']}"
        private = bool(req.get("private")) or req.get("visibility") == "private"
        url = f"{self.url}/{_PREFIX[repo_type]}{repo_id}"
        if not self.state.create(repo_type, repo_id, private):
            return self._json(
                409, {"error": "You already created this repo", "url": url}, {"X-Error-Code": "RepoExists"}
            )
        return self._json(200, {"url": url, "name": repo_id})

    def _lfs_batch(self, repo_id: str) -> None:
        req = json.loads(self._body() or b"{}")
        objects = []
        for obj in req.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if not self.state.has_object(obj["oid"], obj["size"]):
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}"},
                    "verify": {"href": f"{self.url}/lfs-verify/{obj['oid']}"},
                }
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _api(
        self,
        method: str,
        repo_type: str,
        repo_id: str,
        action: str | None,
        rest: str | None,
        query: dict[str, list[str]],
    ) -> None:
        body = self._body() if method in ("POST", "PUT") else b""
        head = method == "HEAD"
        repo = self._repo(repo_type, repo_id, head=head)
        if repo is None:
            return None
        if action is None or (action == "revision" and method == "GET"):
            return self._api_info(repo, repo_id, rest)
        handler = self._API.get((action, method))
        if handler is None:
            return self._error(
                404, "EntryNotFound", f"{method} /api/{repo_type}s/{repo_id}/{action}: not found", head=head
            )
        return handler(self, repo, repo_type, repo_id, rest, query, body)

    def _api_info(self, repo: dict[str, Any], repo_id: str, rest: str | None) -> None:
        sha = self._commit_of(repo, rest or "main")
        if sha is None:
            return None
        files = repo["commits"][sha]["files"]
        return self._json(
            200,
            {
                "id": repo_id,
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "private": repo["private"],
                "sha": sha,
                "siblings": [{"rfilename": p} for p in sorted(files)],
                "tags": [],
                "downloads": 0,
                "likes": 0,
                "disabled": False,
                "gated": False,
            },
        )

    # The handlers below share one signature: (repo, repo_type, repo_id, rest, query, body).

    def _api_preupload(self, repo, repo_type, repo_id, rest, query, body) -> None:
        sha = self.state.resolve(repo, rest or "main")
        files = repo["commits"][sha]["files"] if sha else {}
        out = []
        for f in json.loads(body or b"{}").get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_MIN_SIZE or b"\0" in sample
            remote = files.get(f["path"])
            # Like the Hub: the remote oid (sha256 for LFS, git sha1 otherwise) lets the client skip no-ops.
            oid = None if remote is None else (remote["lfs"]["oid"] if remote["lfs"] else remote["oid"])
            out.append(
                {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return self._json(200, {"files": out, "commitOid": sha})

    def _api_commit(self, repo, repo_type, repo_id, rest, query, body) -> None:
        ops = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        branch = unquote(rest or "main")
        sha, err = self.state.commit(repo, branch, ops)
        if sha is None:
            code = "RevisionNotFound" if err.startswith("Invalid rev") else "EntryNotFound"
            return self._error(404 if code == "RevisionNotFound" else 400, code, err)
        url = f"{self.url}/{_PREFIX[repo_type]}{repo_id}/commit/{sha}"
        return self._json(200, {"commitOid": sha, "commitUrl": url, "success": True, "pullRequestUrl": None})

    def _api_tree(self, repo, repo_type, repo_id, rest, query, body) -> None:
        rev, _, sub = (rest or "main").partition("/")
        return self._tree(repo, rev, unquote(sub), query)

    def _api_refs(self, repo, repo_type, repo_id, rest, query, body) -> None:
        def refs(kind: str, prefix: str) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"{prefix}{n}", "targetCommit": s} for n, s in sorted(repo[kind].items())]

        return self._json(
            200, {"branches": refs("branches", "refs/heads/"), "tags": refs("tags", "refs/tags/"), "converts": []}
        )

    def _api_branch(self, repo, repo_type, repo_id, rest, query, body) -> None:
        branch = unquote(rest or "")
        if branch in repo["branches"]:
            return self._error(409, "BranchExists", f"branch {branch} already exists")
        start = json.loads(body or b"{}").get("startingPoint") or "main"
        sha = self._commit_of(repo, start)
        if sha is None:
            return None
        with self.state.lock:
            repo["branches"][branch] = sha
            self.state.save()
        return self._json(200, {})

    def _api_tag(self, repo, repo_type, repo_id, rest, query, body) -> None:
        sha = self._commit_of(repo, rest or "main")
        if sha is None:
            return None
        tag = json.loads(body or b"{}")["tag"]
        if tag in repo["tags"]:
            return self._error(409, "TagExists", f"tag {tag} already exists")
        with self.state.lock:
            repo["tags"][tag] = sha
            self.state.save()
        return self._json(200, {})

    #: (action, method) -> handler of ``/api/<type>s/<repo_id>/<action>``.
    _API = {
        ("preupload", "POST"): _api_preupload,
        ("commit", "POST"): _api_commit,
        ("tree", "GET"): _api_tree,
        ("refs", "GET"): _api_refs,
        ("branch", "POST"): _api_branch,
        ("tag", "POST"): _api_tag,
    }

    def _tree(self, repo: dict[str, Any], revision: str, sub: str, query: dict[str, list[str]]) -> None:
        sha = self._commit_of(repo, revision)
        if sha is None:
            return None
        recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
        files = repo["commits"][sha]["files"]
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, e in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix) :].split("/")
            for depth in range(1, len(rel)):
                folder = prefix + "/".join(rel[:depth])
                if recursive or depth == 1:
                    entries.setdefault(
                        folder,
                        {
                            "type": "directory",
                            "oid": hashlib.sha1(folder.encode()).hexdigest(),
                            "size": 0,
                            "path": folder,
                        },
                    )
            if recursive or len(rel) == 1:
                entry = {"type": "file", "oid": e["oid"], "size": e["size"], "path": path}
                if e["lfs"]:
                    entry["lfs"] = dict(e["lfs"])
                entries[path] = entry
        if prefix and not entries:
            return self._error(404, "EntryNotFound", f"{sub} does not exist on {revision}")
        return self._json(200, list(entries.values()))

    def _resolve(self, method: str, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        head = method == "HEAD"
        repo = self._repo(repo_type, repo_id, head=head)
        if repo is None:
            return None
        sha = self._commit_of(repo, revision, head=head)
        if sha is None:
            return None
        entry = repo["commits"][sha]["files"].get(path)
        if entry is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {unquote(revision)}", head=head)
        data_path = self.state.object_path(entry["sha256"])
        size = entry["size"]
        etag = entry["lfs"]["oid"] if entry["lfs"] else entry["oid"]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if entry["lfs"]:
            headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(size)}
        start = 0
        rng = self.headers.get("Range")
        if rng and (m := re.match(r"bytes=(\d+)-$", rng.strip())):
            start = min(int(m[1]), size)
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        if not head:
            with open(data_path, "rb") as fh:
                fh.seek(start)
                if self._cut:
                    self.wfile.write(fh.read(max((size - start) // 2, 1)))
                    self._drop()
                    return None
                while chunk := fh.read(1 << 20):
                    self.wfile.write(chunk)
        return None


class HubServer:
    """Run the loopback Hub on ``127.0.0.1`` (a free port) in a daemon thread.

    Args:
        root: Folder for the stored objects and ``state.json`` (created).
        port: 0 picks a free port.

    Attributes:
        url: ``http://127.0.0.1:PORT`` (the ``HF_ENDPOINT``).
        state: The :class:`HubState` (repos, commits, refs) for assertions.
    """

    def __init__(self, root: str | Path, port: int = 0):
        self.state = HubState(Path(root))
        handler = type("Handler", (_Handler,), {"state": self.state, "url": ""})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        handler.url = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="hub-server", daemon=True)

    def start(self) -> HubServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.state.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client_env(self, token: str, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a ``huggingface_hub`` client process talking to this server only."""
        env = dict(os.environ if base is None else base)
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            env.pop(k, None)
        env |= {
            "HF_ENDPOINT": self.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": token,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        return env

    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int = 503,
        retry_after: str | None = None,
        action: str = "status",
        times: int = 1,
    ) -> Fault:
        """Inject a network fault for the next ``times`` requests matching (see :class:`Fault`); returns it."""
        fault = Fault(method, path, action=action, status=status, retry_after=retry_after, times=times)
        self.state.faults.append(fault)
        return fault

    def count(self, method: str, path: str) -> int:
        """How many requests matching ``method`` and the regex ``path`` the server received."""
        return sum(1 for m, p in self.state.requests if m == method and re.search(path, p))

    def commits(self, repo_id: str, repo_type: str = "dataset") -> list[str]:
        """Commit shas of a repo, oldest first."""
        repo = self.state.get(repo_type, repo_id) or {"commits": {}}
        return list(repo["commits"])

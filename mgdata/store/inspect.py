"""``mgdata shards inspect``: count and verify every artifact under a path.

Per artifact: shards, samples, audio seconds and hours, samples per split and
label, side files. Verification reads every shard through
:func:`~mgdata.store.shard.iter_shard` (the index recomputed from the tar
bytes and its digest checked against ``artifact.json``), checks that every
shard ``artifact.json`` lists exists and no other does, that every sample's
``json`` and the ``artifact.json`` carry provenance, and every side file's size
and sha256.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from mgdata.errors import MgdataError, ShardError
from mgdata.provenance import REQUIRED as PROVENANCE_REQUIRED
from mgdata.store.artifact import ARTIFACT_JSON, read_artifact_info
from mgdata.store.codec import decode_json, sha256_file
from mgdata.store.shard import SHARD_RE, check_index, iter_shard, read_index

SAMPLE_PROVENANCE = ("source", "licence", "seed")
#: Where a sample came from: its source clip, or for a generated sample without one its prime or its text prompt
#: (a text-mode generator's clip, e.g. compose's or MusicGen's, is made from a prompt, not from a source).
SAMPLE_ORIGIN = ("source", "prime", "prompt")


def _sample_provenance_problem(sample: dict[str, Any]) -> str:
    """'' if the sample's json member carries provenance (its origin: source, prime or prompt; licence; seed), else
    what lacks."""
    raw = sample.get("json")
    if raw is None:
        return ""  # samples without a json member carry no metadata to check
    try:
        prov = decode_json(raw).get("provenance")  # any artifact kind: only its provenance block
    except (ValueError, AttributeError):
        return "json member is not a JSON object"
    if not isinstance(prov, dict):
        return "json has no provenance"
    lacking = [k for k in SAMPLE_PROVENANCE if k != "source" and prov.get(k) in (None, "")]
    if all(prov.get(k) in (None, "") for k in SAMPLE_ORIGIN):
        lacking.insert(0, "source")
    return f"json provenance lacks {', '.join(lacking)}" if lacking else ""


def _check_shard(shard: Path, verify: bool, digest: str | None, fingerprint: str | None) -> dict[str, Any]:
    try:
        index = read_index(shard)
    except ShardError:
        if verify:  # without a usable index, still name an unsafe or malformed member if there is one
            for _ in iter_shard(shard, verify=False):
                pass
        raise
    if fingerprint is not None and index.get("fingerprint") != fingerprint:
        raise ShardError(str(shard), "index fingerprint differs from artifact.json (a shard of other params)")
    if not verify:
        check_index(shard, index, digest)
        return index
    for sample in iter_shard(shard, verify=True, index_sha256=digest):
        problem = _sample_provenance_problem(sample)
        if problem:
            raise ShardError(str(shard), f"sample {sample['__key__']}: {problem}")
    return index


def _inspect_one(folder: Path, shards: list[Path], verify: bool, errors: list[dict[str, str]]) -> dict[str, Any]:
    """Counts and checks of one artifact folder; appends ``{"shard", "error"}`` to ``errors``."""
    art: dict[str, Any] = {
        "shards": len(shards),
        "samples": 0,
        "seconds": 0.0,
        "hours": 0.0,
        "splits": {},
        "labels": {},
        "files": {},
        "complete": False,
    }
    labels: Counter[str] = Counter()
    info: dict[str, Any] | None = None
    if (folder / ARTIFACT_JSON).exists():
        try:
            info = read_artifact_info(folder)
        except MgdataError as exc:
            errors.append({"shard": str(folder / ARTIFACT_JSON), "error": str(exc)})
    else:
        errors.append({"shard": str(folder), "error": f"no {ARTIFACT_JSON}: artifact incomplete"})
    digests: dict[str, str] | None = None
    fingerprint = None
    if info is not None:
        art["complete"] = True
        prov = info.get("provenance") or {}
        lacking = [k for k in (*PROVENANCE_REQUIRED, "seed") if prov.get(k) in (None, "")]
        if lacking:
            errors.append({"shard": str(folder / ARTIFACT_JSON), "error": f"provenance lacks {', '.join(lacking)}"})
        fingerprint = info.get("fingerprint")
        if isinstance(info.get("indexes"), dict):
            digests = info["indexes"]
            present = {p.name for p in shards}
            for name in sorted(set(digests) - present):
                errors.append({"shard": str(folder / name), "error": "listed in artifact.json but missing"})
        for name, rec in sorted((info.get("files") or {}).items()):
            art["files"][name] = _check_side_file(folder / name, rec, verify, errors)
    for shard in shards:
        try:
            if digests is not None and shard.name not in digests:
                raise ShardError(str(shard), "not listed in artifact.json (stray or stale shard)")
            index = _check_shard(shard, verify, digests.get(shard.name) if digests else None, fingerprint)
        except ShardError as exc:
            errors.append({"shard": str(shard), "error": str(exc)})
            continue
        n = index["samples"]
        art["samples"] += n
        art["seconds"] += index["seconds"]
        art["splits"][index["split"]] = art["splits"].get(index["split"], 0) + n
        labels.update(index.get("labels", {}))
    art["seconds"] = round(art["seconds"], 6)
    art["hours"] = round(art["seconds"] / 3600.0, 4)
    art["splits"] = dict(sorted(art["splits"].items()))
    art["labels"] = dict(sorted(labels.items()))
    return art


def _check_side_file(path: Path, rec: Any, verify: bool, errors: list[dict[str, str]]) -> dict[str, Any]:
    out = {"size": rec.get("size") if isinstance(rec, dict) else None, "ok": False}
    if not isinstance(rec, dict):
        errors.append({"shard": str(path), "error": "side file record in artifact.json is not an object"})
    elif not path.is_file():
        errors.append({"shard": str(path), "error": "side file listed in artifact.json is missing"})
    elif path.stat().st_size != rec.get("size"):
        errors.append(
            {
                "shard": str(path),
                "error": f"side file is {path.stat().st_size} bytes, artifact.json says {rec.get('size')}",
            }
        )
    elif verify and sha256_file(path) != rec.get("sha256"):
        errors.append({"shard": str(path), "error": "side file sha256 does not match artifact.json (corrupt)"})
    else:
        out["ok"] = True
    return out


def inspect_artifact(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """Summarise every artifact under ``path`` (recursively) and check it.

    With ``verify``, each shard is read through and checked against its index
    (recomputed from the tar bytes) and every sample's ``json`` must carry
    provenance (source, licence, seed); every artifact's ``artifact.json`` must
    carry full provenance, list exactly the shards present, and its side files
    must match their recorded size and sha256. Without ``verify`` the indexes
    are trusted (their digests and the tar sizes are still checked) and side
    files are checked by size only.

    Returns:
        ``{"path", "shards", "samples", "splits", "labels", "verified", "ok",
        "errors": [{"shard", "error"}], "artifacts": {dir: {"shards", "samples",
        "seconds", "hours", "splits", "labels", "files", "complete"}},
        "seconds", "hours"}``. Top-level ``seconds``/``hours`` are those of the
        single artifact, or ``None`` when ``path`` holds several (hours of a
        mix and of its stems are not added up); ``verified`` is true only if
        verification ran and passed.

    Raises:
        MgdataError: ``path`` does not exist (one line).
    """
    root = Path(path)
    if root.is_file():
        by_dir = {root.parent: [root]}
        if not SHARD_RE.match(root.name):
            raise MgdataError(f"{root}: not a shard ({{split}}-{{index:06d}}.tar) nor a directory")
    elif root.is_dir():
        by_dir: dict[Path, list[Path]] = {}
        for p in sorted(root.rglob("*.tar")):
            if SHARD_RE.match(p.name):
                by_dir.setdefault(p.parent, []).append(p)
        for info_path in sorted(root.rglob(ARTIFACT_JSON)):
            by_dir.setdefault(info_path.parent, [])
    else:
        raise MgdataError(f"{root}: no such file or directory")
    errors: list[dict[str, str]] = []
    artifacts: dict[str, dict[str, Any]] = {}
    for folder in sorted(by_dir):
        shards = sorted(by_dir[folder])
        if root.is_file():
            art = _inspect_single_shard(root, verify, errors)
        else:
            art = _inspect_one(folder, shards, verify, errors)
        artifacts[str(folder)] = art
    if not artifacts:
        errors.append({"shard": str(root), "error": "no shards and no artifact.json found"})
    splits: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    for art in artifacts.values():
        splits.update(art["splits"])
        labels.update(art["labels"])
    single = next(iter(artifacts.values())) if len(artifacts) == 1 else None
    return {
        "path": str(root),
        "shards": sum(a["shards"] for a in artifacts.values()),
        "samples": sum(a["samples"] for a in artifacts.values()),
        "seconds": round(single["seconds"], 3) if single else None,
        "hours": single["hours"] if single else None,
        "splits": dict(sorted(splits.items())),
        "labels": dict(sorted(labels.items())),
        "verified": verify and not errors,
        "ok": not errors,
        "errors": errors,
        "artifacts": artifacts,
    }


def _inspect_single_shard(shard: Path, verify: bool, errors: list[dict[str, str]]) -> dict[str, Any]:
    """A shard given on its own: checked against its index and, if present, its folder's artifact.json."""
    sub: list[dict[str, str]] = []
    art = _inspect_one(shard.parent, [shard], verify, sub)
    own = (str(shard), str(shard.parent / ARTIFACT_JSON), str(shard.parent))
    errors.extend(e for e in sub if e["shard"] in own)  # findings about the folder's other files do not apply
    return art

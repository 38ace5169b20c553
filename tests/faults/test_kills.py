"""SIGKILL at commit points and at random moments, then rerun: every output byte-identical to an uninterrupted run.

Commit points are the stage process's ``os.replace``/``os.rename`` calls (the store publishes every finished file
by a rename), taken from the trace of the reference run; a kill just before and just after each of them is
chained (kill, rerun killed at the next point, ...), so each run resumes what the previous one left, and the
final rerun must reproduce the reference bytes. After every kill, nothing under a final name may be partial: every
JSON parses, every shard with an index matches it, and an artifact.json lists only shards that verify.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from mgdata.testing.faults import tar_members

from .conftest import FAMILIES, NOT_SHARD_WRITING, Project, is_temporary, last_line, record

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SEED = int(os.environ.get("MGDATA_FAULTS_SEED", "0"))
N_RANDOM = int(os.environ.get("MGDATA_FAULTS_RANDOM", "10"))
COMMIT_POINTS = os.environ.get("MGDATA_FAULTS_COMMIT_POINTS", "3")
ALL_POINTS_FAMILIES = ("stems",)


def _shard_problem(tar, idx: dict) -> str:
    """Why a final-named shard does not match its index ('' when it does): format-independent checks only
    (size, whole-file sha256 when the index has one, a complete tar holding the indexed sample count)."""
    import hashlib

    if "bytes" in idx and tar.stat().st_size != idx["bytes"]:
        return f"{tar.stat().st_size} bytes, index says {idx['bytes']}"
    if "sha256" in idx and hashlib.sha256(tar.read_bytes()).hexdigest() != idx["sha256"]:
        return "sha256 differs from its index"
    try:
        keys = {m.name.split(".", 1)[0] for m in tar_members(tar)}
    except Exception as exc:  # noqa: BLE001 - an unreadable tar is the finding
        return f"unreadable tar: {exc}"
    if "samples" in idx and len(keys) != idx["samples"]:
        return f"{len(keys)} samples, index says {idx['samples']}"
    return ""


def partial_files(project: Project, outs: list[str]) -> list[str]:
    """Files under a final name that a reader trusting artifact.json could see half-written."""
    import hashlib

    problems = []
    for rel in outs:
        root = project.root / rel
        files = [root] if root.is_file() else sorted(root.rglob("*")) if root.exists() else []
        for f in files:
            if not f.is_file() or is_temporary(f.name):
                continue
            name = str(f.relative_to(project.root))
            if f.suffix in (".json", ".idx"):
                try:
                    json.loads(f.read_text())
                except (ValueError, UnicodeDecodeError):
                    problems.append(f"{name}: unparseable JSON under a final name")
                    continue
            if f.name.endswith(".tar.idx"):
                tar = f.with_name(f.name[: -len(".idx")])
                why = _shard_problem(tar, json.loads(f.read_text())) if tar.exists() else "index without its shard"
                if why:
                    problems.append(f"{name}: {why}")
            if f.name == "artifact.json":
                info = json.loads(f.read_text())
                for split in (info.get("splits") or {}).values():
                    for shard in split.get("shards", []) if isinstance(split, dict) else []:
                        tar = f.parent / shard
                        idx = tar.with_name(tar.name + ".idx")
                        if not tar.exists() or not idx.exists():
                            problems.append(f"{name}: lists {shard}, which is missing")
                        elif why := _shard_problem(tar, json.loads(idx.read_text())):
                            problems.append(f"{name}: lists {shard}: {why}")
                for fname, meta in (info.get("files") or {}).items():
                    side = f.parent / fname
                    if not side.exists() or (
                        "sha256" in meta and hashlib.sha256(side.read_bytes()).hexdigest() != meta["sha256"]
                    ):
                        problems.append(f"{name}: side file {fname} missing or not matching")
    return problems


def _diff(ref: dict[str, str], got: dict[str, str]) -> str:
    missing = sorted(set(ref) - set(got))
    extra = sorted(set(got) - set(ref))
    changed = sorted(k for k in set(ref) & set(got) if ref[k] != got[k])
    return f"missing {missing[:5]}, extra {extra[:5]}, changed {changed[:5]}"


def _chain(reference, fresh, family: str, kills: list[dict], label: str) -> None:
    """Run the kill chain on ``family`` (outputs wiped first), then a final rerun; assert identity."""
    st = reference.require(family)
    fresh.wipe_outs(st)
    problems = []
    killed = 0
    for k in kills:
        k = k(fresh) if callable(k) else k
        res = fresh.run(st, kill=k.get("spec"), kill_after_s=k.get("after_s"), timer_from_replace=k.get("from", 0))
        case = k.get("spec") or f"commit {k.get('from', 0)} + {k['after_s']:.2f}s"
        if res.returncode == -9:
            killed += 1
            bad = partial_files(fresh, st.outs)
            record(
                "kill",
                family,
                f"{label} {case}",
                "partial file visible: " + "; ".join(bad) if bad else "killed, nothing partial visible",
                not bad,
            )
            problems += [f"after kill {case}: {b}" for b in bad]
        elif res.returncode == 0:
            record("kill", family, f"{label} {case}", "run finished before the kill point", True)
        else:
            tail = last_line(res.stderr)
            record("kill", family, f"{label} {case}", f"rerun after a kill exited {res.returncode}: {tail}", False)
            problems.append(f"run with kill {case} exited {res.returncode}: {tail}")
    final = fresh.run(st)
    if final.returncode != 0:
        problems.append(f"final rerun exited {final.returncode}: {last_line(final.stderr)}")
    got = fresh.digest(st)
    if got != reference.digests[st.name]:
        problems.append("outputs differ from the uninterrupted run: " + _diff(reference.digests[st.name], got))
    record(
        "kill",
        family,
        f"{label} final rerun ({killed} kills landed)",
        "byte-identical" if not problems else "; ".join(problems)[:300],
        not problems,
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("family", FAMILIES)
def test_kill_at_commit_points(reference, fresh, family):
    st = reference.require(family)
    trace = reference.traces[st.name]
    dsts = []
    for rec in trace:
        rel = (
            os.path.relpath(os.path.join(reference.project.root, rec["dst"]), reference.project.root)
            if not os.path.isabs(rec["dst"])
            else os.path.relpath(rec["dst"], reference.project.root)
        )
        if rel not in dsts:
            dsts.append(rel)
    assert dsts, f"{st.name}: the uninterrupted run renamed nothing (no commit points?)"
    if COMMIT_POINTS != "all" and family not in ALL_POINTS_FAMILIES:
        rng = random.Random(f"{SEED}-{family}")
        n = min(int(COMMIT_POINTS), len(dsts))
        keep = {dsts[0], dsts[-1], *rng.sample(dsts, n)}
        dsts = [d for d in dsts if d in keep]
    kills = [{"spec": f"dst:{d}:{when}"} for d in dsts for when in ("before", "after")]
    _chain(reference, fresh, family, kills, "commit")


@pytest.mark.parametrize("family", FAMILIES)
def test_kill_at_random_moments(reference, fresh, family):
    st = reference.require(family)
    trace = reference.traces[st.name]
    assert trace, f"{st.name}: the uninterrupted run renamed nothing"
    ts = [r["t_s"] for r in trace]
    gaps = sorted(b - a for a, b in zip(ts, ts[1:], strict=False)) or [0.5]
    gap = max(gaps[len(gaps) // 2], 0.05)
    ref = reference.digests[st.name]
    rng = random.Random(f"{SEED}-{family}-random")
    kills = []
    for _ in range(N_RANDOM):
        # Each moment is drawn when its run starts: after the n-th commit of that run (n below the commits the
        # chain has not made yet, so it can land) plus a delay up to the typical gap between two commits, i.e.
        # mid-way through writing the next file; n = 0 draws from the second before the first commit.
        kills.append(lambda project, _rng=rng: _draw(project, st, ref, trace, gap, _rng))
    _chain(reference, fresh, family, kills, "random")


def _draw(project, st, ref, trace, gap, rng) -> dict:
    done = project.digest(st)
    remaining = sum(
        1
        for rec in trace
        if _rel(project, rec["dst"]) not in done
        or done[_rel(project, rec["dst"])] != ref.get(_rel(project, rec["dst"]))
    )
    n = rng.randrange(0, max(remaining, 1))
    if n == 0:
        return {"after_s": rng.uniform(max(0.0, trace[0]["t_s"] - 1.0), trace[0]["t_s"]), "from": 0}
    return {"after_s": rng.uniform(0.0, gap), "from": n}


def _rel(project, dst: str) -> str:
    return os.path.relpath(dst, project.root) if os.path.isabs(dst) else os.path.normpath(dst)


def test_every_shard_stage_is_covered(reference):
    """A new shard-writing stage in dvc.yaml must be added to FAMILIES (and so to every test here)."""
    stages = reference.project.stages
    ran = {st.family for st in stages if st.name in reference.results and reference.project.artifacts(st)}
    unknown = {
        st.family
        for st in stages
        if st.family not in FAMILIES
        and st.family not in NOT_SHARD_WRITING
        and any(o.startswith("data/") for o in st.outs)
    }
    missing = (ran - set(FAMILIES)) | unknown
    record(
        "kill",
        "coverage",
        "shard-writing stages in dvc.yaml",
        f"not covered: {sorted(missing)}" if missing else f"all covered: {sorted(FAMILIES)}",
        not missing,
    )
    assert not missing, f"stages with outputs under data/ not covered by the fault suite: {sorted(missing)}"

"""Corruption of committed artifacts: caught by `mgdata shards inspect` (exit 1, naming the file), by the stage
that reads the artifact (exit 2, one line naming it), and repaired byte-identical by rerunning the producer.

The bytes are damaged the way a bad disk, a bad copy or a hand edit would: 16 flipped bytes inside an audio (or
npy) payload, inside a json payload, inside a tar header; an index edited to still-valid JSON (a key renamed, a
label count +5); an index deleted; artifact.json truncated.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mgdata.testing.faults import find_member, flip_bytes, tar_members, truncate

from .conftest import PYTHON, Project, last_line, one_line_error, record

pytestmark = [pytest.mark.slow, pytest.mark.faults]

FULL = os.environ.get("MGDATA_FAULTS_FULL") == "1"
KINDS = (
    "flip_payload",
    "flip_json",
    "flip_header",
    "index_key_renamed",
    "index_label_count",
    "index_deleted",
    "artifact_json_truncated",
)
# Leaf artifacts (nothing downstream in the tiny pipeline reads them) get a cheaper subset unless FULL.
LEAF_KINDS = KINDS if FULL else ("flip_payload", "index_key_renamed", "artifact_json_truncated")

# producer family -> [(artifact path under the project or None = its first artifact, consumer reading it or None)].
# The corpus's two artifacts are damaged together (same kind) so one corpus rerun repairs both.
TARGETS = {
    "corpus": [("data/corpus/mix", "embed"), ("data/corpus/stems", "stems")],
    "stems": [("data/stems", "tokens")],
    "generate": [(None, None)],
    "embed": [(None, None)],
    "tokens": [(None, None)],
}
CASES = [(p, k) for p, arts in TARGETS.items() for k in (KINDS if any(c for _, c in arts) else LEAF_KINDS)]


def _first_shard(art: Path) -> Path:
    shards = sorted(art.glob("*.tar"))
    assert shards, f"{art}: no shards"
    return shards[0]


def corrupt(art: Path, kind: str) -> str:
    """Damage the artifact at ``art``; returns the file name an error must mention."""
    if kind == "artifact_json_truncated":
        truncate(art / "artifact.json", 0.5)
        return "artifact.json"
    shard = _first_shard(art)
    idx = shard.with_name(shard.name + ".idx")
    if kind == "flip_payload":
        m = next(m for m in tar_members(shard) if not m.name.endswith(".json") and m.size >= 64)
        flip_bytes(shard, m.data_offset + m.size // 2, 16)
    elif kind == "flip_json":
        m = find_member(shard, ".json")
        flip_bytes(shard, m.data_offset + min(8, max(m.size - 16, 0)), min(16, m.size))
    elif kind == "flip_header":
        m = tar_members(shard)[1]
        flip_bytes(shard, m.header_offset + 100, 16)  # mode/uid/gid fields of the second member's header
    elif kind == "index_key_renamed":
        index = json.loads(idx.read_text())
        index["keys"][0] = index["keys"][0] + "x"
        idx.write_text(json.dumps(index, sort_keys=True, indent=1) + "\n")
    elif kind == "index_label_count":
        index = json.loads(idx.read_text())
        if index.get("labels"):
            first = sorted(index["labels"])[0]
            index["labels"][first] += 5
        else:
            index["seconds"] = float(index.get("seconds", 0.0)) + 5.0
        idx.write_text(json.dumps(index, sort_keys=True, indent=1) + "\n")
    elif kind == "index_deleted":
        idx.unlink()
    else:
        raise ValueError(kind)
    return shard.name


def inspect(project: Project, art: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "mgdata", "shards", "inspect", str(art)],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("producer,kind", CASES, ids=[f"{p}-{k}" for p, k in CASES])
def test_corruption(reference, fresh, producer, kind):
    st = reference.require(producer)
    problems = []
    for art_rel, consumer in TARGETS[producer]:
        art = fresh.root / art_rel if art_rel else fresh.artifacts(st)[0]
        label = f"{art.relative_to(fresh.root)} {kind}"
        needle = corrupt(art, kind)

        res = inspect(fresh, art)
        text = res.stdout + res.stderr
        ok = res.returncode == 1 and needle in text and "Traceback" not in text
        record(
            "corruption",
            producer,
            f"{label}: shards inspect",
            "exit 1 naming the file"
            if ok
            else f"exit {res.returncode}, names file: {needle in text}, traceback: {'Traceback' in text}",
            ok,
        )
        if not ok:
            problems.append(
                f"{label}: shards inspect exited {res.returncode} (want 1 naming {needle}): {last_line(text)}"
            )
        if consumer:
            cst = reference.require(consumer)
            fresh.wipe_outs(cst)  # a fresh consumer run reads every upstream sample (as after dvc deletes outs)
            res = fresh.run(cst)
            line = one_line_error(res)
            ok = res.returncode == 2 and bool(line) and needle in line
            tail = last_line(res.stderr)
            record(
                "corruption",
                producer,
                f"{label}: {consumer} reading it",
                "exit 2, one line naming the file"
                if ok
                else f"exit {res.returncode}, one line: {bool(line)}, names file: {needle in res.stderr}; {tail}",
                ok,
            )
            if not ok:
                problems.append(
                    f"{label}: {consumer} exited {res.returncode} (want 2, one line naming {needle}): "
                    f"{last_line(res.stderr)}"
                )

    res = fresh.run(st)
    got = fresh.digest(st)
    same = got == reference.digests[st.name]
    ok = res.returncode == 0 and same
    record(
        "corruption",
        producer,
        f"{kind}: rerun of {producer}",
        "repaired byte-identical" if ok else f"exit {res.returncode}, identical: {same}",
        ok,
    )
    if not ok:
        problems.append(
            f"rerun of {producer} exited {res.returncode}, outputs identical: {same}: {last_line(res.stderr)}"
        )
    assert not problems, "\n".join(problems)

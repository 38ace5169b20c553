"""A catalogue of bad inputs, each with its expected outcome: a one-line error naming the culprit (exit 2), or the
input skipped and counted with a deterministic reason naming it (exit 0). Never a traceback, never silence.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from mgdata.testing.faults import BAD_AUDIO_KINDS, UNSAFE_MEMBER_KINDS, unsafe_tar, write_bad_artifact

from .conftest import Project, last_line, one_line_error, record

pytestmark = [pytest.mark.slow, pytest.mark.faults]

# A repr of a live object in a metric or a reason makes two identical runs differ (issue 12, hole 5).
NONDETERMINISTIC = re.compile(r"object at 0x[0-9a-f]+|<[A-Za-z_.]+ object")


REPORT_DIRS = ("metrics", "stage_reports")  # numbers-only metrics, and the full stage report (skips with reasons)


def _clear_reports(project: Project) -> None:
    for d in REPORT_DIRS:
        shutil.rmtree(project.root / d, ignore_errors=True)


def _metrics_text(project: Project, stage) -> str:
    """Every report the stage wrote: metrics, stage reports, report.json files among its outputs."""
    files = [f for d in REPORT_DIRS for f in sorted((project.root / d).rglob("*.json"))]
    for rel in stage.outs:
        p = project.root / rel
        if p.is_dir():
            files += sorted(p.rglob("report.json"))
    return "\n".join(f.read_text() for f in dict.fromkeys(files))


def _outcome(res, project, stage, culprit: str, *, allow_clean: bool = False) -> tuple[bool, str]:
    """(as expected, description): exit 2 with one line naming culprit, or exit 0 with culprit in the metrics."""
    if "Traceback (most recent call last)" in res.stderr:
        return False, f"traceback (exit {res.returncode}): {last_line(res.stderr)}"
    if res.returncode == 2:
        line = one_line_error(res)
        if line and culprit in line:
            return True, "exit 2, one line naming it"
        return False, f"exit 2 but not one line naming {culprit!r}: {last_line(res.stderr)}"
    if res.returncode == 0:
        text = _metrics_text(project, stage)
        if NONDETERMINISTIC.search(text):
            return False, f"skip reason holds an object repr: {NONDETERMINISTIC.search(text).group(0)}"
        if culprit in text:
            return True, "skipped and counted, named in the metrics"
        if allow_clean:
            return True, "processed (valid input)"
        return False, f"exit 0 and {culprit!r} not named in the metrics: used silently"
    return False, f"exit {res.returncode}: {last_line(res.stderr)}"


# ------------------------------------------------------------------------------------------------ bad audio


@pytest.mark.parametrize("consumer", ["embed", "stems"])
@pytest.mark.parametrize("kind", BAD_AUDIO_KINDS)
def test_bad_audio(reference, fresh, consumer, kind):
    st = reference.require(consumer)
    bad = fresh.root / "bad"
    track = write_bad_artifact(bad, kind)
    # The bad artifact takes the corpus's place (stage commands may carry no paths: they use their defaults).
    shutil.rmtree(fresh.root / "data/corpus")
    shutil.copytree(bad, fresh.root / "data/corpus")
    fresh.wipe_outs(st)
    _clear_reports(fresh)
    res = fresh.run(st)
    # Silent audio is valid audio (an embedding of silence; a silent stem-window dropped and counted).
    ok, what = _outcome(res, fresh, st, track, allow_clean=(kind == "silent"))
    if kind == "silent" and res.returncode != 0:
        ok, what = False, f"silent audio is valid input, got exit {res.returncode}: {last_line(res.stderr)}"
    record("bad input", consumer, f"{kind} audio in its input", what, ok)
    assert ok, what


# ------------------------------------------------------------------------------------------------ params

PARAMS_CASES = {
    "yaml_syntax": ("params.yaml", lambda text, p: text + "\nstems: [unclosed\n"),
    "unknown_section": ("bogus_section", lambda text, p: yaml.safe_dump({**p, "bogus_section": {"a": 1}})),
    "missing_section": ("stems", lambda text, p: yaml.safe_dump({k: v for k, v in p.items() if k != "stems"})),
    "missing_shards": ("shards", lambda text, p: yaml.safe_dump({k: v for k, v in p.items() if k != "shards"})),
    "unknown_key": ("windw_s", lambda text, p: yaml.safe_dump({**p, "stems": {**p["stems"], "windw_s": 3.0}})),
    "wrong_type": ("window_s", lambda text, p: yaml.safe_dump({**p, "stems": {**p["stems"], "window_s": "long"}})),
    "section_not_mapping": ("stems", lambda text, p: yaml.safe_dump({**p, "stems": [1, 2]})),
}


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_bad_params(reference, fresh, case):
    st = reference.require("stems")
    culprit, edit = PARAMS_CASES[case]
    path = fresh.root / "params.yaml"
    text = path.read_text()
    path.write_text(edit(text, yaml.safe_load(text)))
    fresh.wipe_outs(st)
    res = fresh.run(st)
    line = one_line_error(res)
    ok = res.returncode == 2 and bool(line) and culprit in line
    what = (
        "exit 2, one line naming it"
        if ok
        else (f"exit {res.returncode}, one line: {bool(line)}: {last_line(res.stderr)}")
    )
    record("bad input", "stems", f"params {case}", what, ok)
    assert ok, what


def test_missing_params_file(reference, fresh):
    st = reference.require("stems")
    (fresh.root / "params.yaml").unlink()
    res = fresh.run(st)
    line = one_line_error(res)
    ok = res.returncode == 2 and "params.yaml" in line
    record(
        "bad input",
        "stems",
        "params file missing",
        "exit 2, one line naming it" if ok else f"exit {res.returncode}: {last_line(res.stderr)}",
        ok,
    )
    assert ok


# ------------------------------------------------------------------------------------------------ files and tars


def test_missing_upstream_artifact(reference, fresh):
    st = reference.require("stems")
    shutil.rmtree(fresh.root / "data/corpus/stems")
    fresh.wipe_outs(st)
    res = fresh.run(st)
    line = one_line_error(res)
    ok = res.returncode == 2 and "corpus/stems" in line
    record(
        "bad input",
        "stems",
        "upstream artifact folder missing",
        "exit 2, one line naming it" if ok else f"exit {res.returncode}: {last_line(res.stderr)}",
        ok,
    )
    assert ok


def test_missing_shard(reference, fresh):
    st = reference.require("stems")
    art = fresh.root / "data/corpus/stems"
    shard = sorted(art.glob("*.tar"))[0]
    shard.unlink()
    shard.with_name(shard.name + ".idx").unlink()
    fresh.wipe_outs(st)
    res = fresh.run(st)
    line = one_line_error(res)
    ok = res.returncode == 2 and shard.name in line
    record(
        "bad input",
        "stems",
        "a shard listed in artifact.json missing",
        "exit 2, one line naming it" if ok else f"exit {res.returncode}: {last_line(res.stderr)}",
        ok,
    )
    assert ok


@pytest.mark.parametrize("kind", UNSAFE_MEMBER_KINDS)
def test_unsafe_tar_member(reference, fresh, kind):
    import hashlib

    st = reference.require("stems")
    art = fresh.root / "data/corpus/stems"
    shard = sorted(art.glob("*.tar"))[0]
    with tarfile.open(shard) as tf:
        good = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
    evil = unsafe_tar(shard, kind, good)
    # Keep the index consistent with the bytes, so the unsafe member itself is what must be refused.
    idx = shard.with_name(shard.name + ".idx")
    index = json.loads(idx.read_text())
    index["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
    index["bytes"] = shard.stat().st_size
    idx.write_text(json.dumps(index, sort_keys=True, indent=1) + "\n")
    from .test_corruption import inspect

    res = inspect(fresh, art)
    text = res.stdout + res.stderr
    # The store may refuse the shard at its index (the tar no longer matches what was committed) before it
    # reaches the member: either way the shard is refused and named, and nothing is extracted.
    named = "evil" in text or shard.name in text
    ok1 = res.returncode == 1 and named and "Traceback" not in text
    record(
        "bad input",
        "corpus",
        f"unsafe member {kind}: shards inspect",
        ("exit 1 naming the member" if "evil" in text else "exit 1 naming the shard")
        if ok1
        else f"exit {res.returncode}: {last_line(text)}",
        ok1,
    )
    fresh.wipe_outs(st)
    res = fresh.run(st)
    line = one_line_error(res)
    ok2 = res.returncode == 2 and ("evil" in line or shard.name in line)
    record(
        "bad input",
        "stems",
        f"unsafe member {kind} in the input",
        ("exit 2, one line naming the member" if "evil" in line else "exit 2, one line naming the shard")
        if ok2
        else f"exit {res.returncode}: {last_line(res.stderr)}",
        ok2,
    )
    outside = [
        p for p in (Path("/tmp/evil.json"), fresh.root.parent / "evil.json", fresh.root / "evil.json") if p.exists()
    ]
    assert not outside, f"unsafe member written outside the artifact: {outside}"
    assert ok1 and ok2, f"{evil}: inspect ok={ok1}, stage ok={ok2}"


# ------------------------------------------------------------------------------------------------ tokens, relabel


def test_k_above_segments(reference, fresh):
    st = reference.require("tokens")
    argv = list(st.argv)
    i = argv.index("--k")
    argv[i + 1] = "30000"  # int16 tokens allow it; the tiny stems hold far fewer training segments
    res = fresh.run(st, argv=argv)
    line = one_line_error(res)
    # The line must name the params key and the value given, not merely contain a "k" somewhere.
    ok = res.returncode == 2 and "tokens.k" in line and "k=30000" in line
    record(
        "bad input",
        "tokens",
        "k above the number of segments",
        "exit 2, one line naming k" if ok else f"exit {res.returncode}: {last_line(res.stderr)}",
        ok,
    )
    assert ok


def test_unknown_tags(reference, fresh):
    import polars as pl

    st = reference.require("relabel")
    man = fresh.root / "data/corpus/manifest.parquet"
    df = pl.read_parquet(man)
    col = "mood_tags" if "mood_tags" in df.columns else "tags"
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(["zzz-unknown-tag"])).otherwise(pl.col(col)).alias(col)
    )
    df.write_parquet(man)
    _clear_reports(fresh)
    res = fresh.run(st)
    ok, what = _outcome(res, fresh, st, "zzz-unknown-tag")
    if ok and res.returncode == 0:
        # Named is not enough: the tag must be counted once, as unknown, on top of what the reference counted.
        ref = json.loads((reference.project.root / "stage_reports/relabel.json").read_text())["corpus"]
        got = json.loads((fresh.root / "stage_reports/relabel.json").read_text())["corpus"]
        counted = got["unknown_tags"].get("zzz-unknown-tag") == 1 and (
            got["unknown_tag_occurrences"] == ref["unknown_tag_occurrences"] + 1
        )
        ok, what = counted, what if counted else f"named but not counted once as unknown: {got['unknown_tags']}"
    record("bad input", "relabel", "unknown mood tag", what, ok)
    assert ok, what


# A slice of the real MTG-Jamendo metadata (28 rows per split, CC BY-NC-SA 4.0: see its README.md).
JAMENDO_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/jamendo"
JAMENDO_FIXTURE_ROWS = 3 * 28

MALFORMED_ROWS = [
    "track_9999991\tartist_1\talbum_1\t91/9999991.mp3\tnot-a-number\tmood/theme---happy",  # bad duration
    "track_9999992\tartist_1",  # too few fields
    "\tartist_1\talbum_1\t92/9999992.mp3\t100.0\tmood/theme---sad",  # empty track id
]


def _relabel_jamendo(fresh, st, **jamendo):
    """Run relabel with the MTG-Jamendo fixture slice plus MALFORMED_ROWS appended to its train split."""
    meta = fresh.root / "jamendo"
    shutil.copytree(JAMENDO_FIXTURE, meta)
    train = meta / "splits/split-0/autotagging_moodtheme-train.tsv"
    data = train.read_bytes()  # CRLF kept, as in the dataset
    first_bad = len(data.splitlines()) + 1  # the line number of the first appended row
    train.write_bytes(data + "".join(r + "\r\n" for r in MALFORMED_ROWS).encode())
    params = yaml.safe_load((fresh.root / "params.yaml").read_text())
    params["relabel"]["jamendo"].update(metadata_dir="jamendo", **jamendo)
    (fresh.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _clear_reports(fresh)
    return fresh.run(st), f"jamendo/splits/split-0/{train.name}", first_bad


def test_malformed_tsv_rows(reference, fresh):
    """Each malformed row is skipped and listed with its file:line and reason; the good rows are still labelled."""
    st = reference.require("relabel")
    res, train, first = _relabel_jamendo(fresh, st)
    report = json.loads((fresh.root / "stage_reports/relabel.json").read_text())
    listed = {i["item"]: i["reason"] for i in report["skipped_items"]}
    expected = {f"{train}:{first + i}" for i in range(len(MALFORMED_ROWS))}
    ok = (
        res.returncode == 0
        and report["skipped_by_reason"] == {"malformed row": len(MALFORMED_ROWS)}
        and set(listed) == expected
        and all(r.startswith("malformed row: ") for r in listed.values())
        and report["jamendo"]["tracks_in"] == JAMENDO_FIXTURE_ROWS
        and not NONDETERMINISTIC.search(_metrics_text(fresh, st))
    )
    record(
        "bad input",
        "relabel",
        "malformed TSV rows",
        "skipped and listed by file:line"
        if ok
        else f"exit {res.returncode}, listed {sorted(listed)}: {last_line(res.stderr)}",
        ok,
    )
    assert ok, (res.returncode, listed, last_line(res.stderr))


def test_malformed_tsv_row_with_fail_on_error(reference, fresh):
    """relabel.jamendo.fail_on_error stops at the first malformed row: exit 2, one line naming its file:line."""
    st = reference.require("relabel")
    res, train, first = _relabel_jamendo(fresh, st, fail_on_error=True)
    line = one_line_error(res)
    ok = res.returncode == 2 and f"{train}:{first}" in line and "DURATION" in line
    record(
        "bad input",
        "relabel",
        "malformed TSV row, fail_on_error",
        "exit 2, one line naming file:line" if ok else f"exit {res.returncode}: {last_line(res.stderr)}",
        ok,
    )
    assert ok, res.stderr[-2000:]

"""Stage reports: skips are listed with reasons; run-state counters stay out of the metrics."""

import json

from mgdata.report import StageReport


def test_skips_are_counted_and_listed(tmp_path):
    r = StageReport("demo")
    r.count("tracks", 3)
    r.skip("a.mp3", "unreadable audio: bad header")
    r.skip("b.mp3", "unreadable audio: truncated")
    r.skip("c.mp3", "missing file")
    m = json.loads(r.write(tmp_path / "m.json", tmp_path / "r.json").read_text())
    assert m == {"tracks": 3, "skipped": 3}  # metrics: numbers only
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["tracks"] == 3 and d["skipped"] == 3
    assert d["skipped_by_reason"] == {"unreadable audio": 2, "missing file": 1}
    assert {s["item"] for s in d["skipped_items"]} == {"a.mp3", "b.mp3", "c.mp3"}


def test_run_state_is_logged_not_written(tmp_path, caplog):
    clean, resumed = StageReport("demo"), StageReport("demo")
    clean.count("samples", 4)
    resumed.count("samples", 4)
    resumed.run("resumed", 3)
    with caplog.at_level("INFO", logger="mgdata"):
        a = clean.write(tmp_path / "a.json").read_bytes()
        b = resumed.write(tmp_path / "b.json").read_bytes()
    assert a == b
    assert "resumed" in caplog.text

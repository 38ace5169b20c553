"""Stage reports: counters, skipped inputs with reasons, the metrics JSON DVC tracks and the report JSON beside it.

Two files per stage run, both a function of the inputs and params only:

* ``metrics/<stage>.json``: flat numbers only (counts, seconds, rates, scores), so
  ``dvc metrics show``/``diff`` stays a table of a few columns per stage;
* ``stage_reports/<stage>.json``: everything, including per-split/per-label
  breakdowns, strings and every skipped input with its reason.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

from mgdata.store.files import write_atomic

log = logging.getLogger("mgdata")


_OBJECT_ADDRESS = re.compile(r" (object )?at 0x[0-9a-fA-F]+")


def deterministic_text(value: object) -> str:
    """``str(value)`` without memory addresses (``<_io.BytesIO object at 0x7f..>`` -> ``<_io.BytesIO>``).

    Skip reasons end up in reports that must be a function of inputs and params only.
    """
    return _OBJECT_ADDRESS.sub("", str(value))


class StageReport:
    """Counts what a stage did and every input it skipped, and why.

    Nothing is dropped silently: :meth:`skip` logs the item and reason, counts it
    per reason, and lists it in the written report. The written report is a
    function of the inputs and params only (run-state counters go to the log).
    """

    def __init__(self, stage: str):
        self.stage = stage
        self.counts: Counter[str] = Counter()
        self.values: dict[str, Any] = {}
        self.skipped: list[dict[str, str]] = []
        self.run_counts: Counter[str] = Counter()

    def count(self, name: str, n: int | float = 1) -> None:
        """Add ``n`` to counter ``name``."""
        self.counts[name] += n

    def run(self, name: str, n: int = 1) -> None:
        """Count something that depends on this run, not on the data (resumed samples, cache hits).

        Logged when the report is written but kept out of the metrics, so a
        resumed or cached rerun writes the same metrics as a clean one.
        """
        self.run_counts[name] += n

    def set(self, name: str, value: Any) -> None:
        """Record a value (a figure, a dict of per-class figures...)."""
        self.values[name] = value

    def skip(self, item: str, reason: str) -> None:
        """Record that ``item`` (a file, score id or sample key) was skipped, and why."""
        reason = deterministic_text(reason)
        log.warning("%s: skipped %s: %s", self.stage, item, reason)
        self.skipped.append({"item": deterministic_text(item), "reason": reason})

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        """Skips per reason (the reason's text up to the first colon)."""
        return dict(Counter(s["reason"].split(":")[0] for s in self.skipped))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {
            "stage": self.stage,
            **{k: v for k, v in self.counts.items()},
            **self.values,
            "skipped": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason,
            "skipped_items": self.skipped,
        }

    def metrics(self, keys: tuple[str, ...] = ()) -> dict[str, int | float]:
        """The headline numbers: counters and scalar numeric values, plus the skip count.

        Args:
            keys: ``fnmatch`` patterns of the numbers to keep (``skipped`` always stays);
                empty = every number. Nested breakdowns, strings and lists stay in
                :meth:`to_dict` (the report file) either way.
        """
        out: dict[str, int | float] = {}
        for k, v in {**self.counts, **self.values}.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if keys and not any(fnmatch.fnmatchcase(k, pattern) for pattern in keys):
                continue
            out[k] = v
        out["skipped"] = len(self.skipped)
        return out

    def write(self, path: str | Path, report_path: str | Path | None = None, *, keys: tuple[str, ...] = ()) -> Path:
        """Write the metrics (numbers only, ``keys`` patterns) to ``path`` and, if given, the full report.

        Both are sorted JSON, deterministic for the same inputs and params.
        """
        path = Path(path)
        if self.run_counts:
            log.info("%s: this run: %s", self.stage, dict(sorted(self.run_counts.items())))
        write_json(path, self.metrics(keys))
        if report_path is not None:
            write_json(Path(report_path), self.to_dict())
        return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as sorted, indented JSON (deterministic bytes), atomically (fsynced temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))

"""``mgdata compare``: metrics side by side across params versions (DVC experiments, git revisions, workspaces).

A *version* is a set of flat metrics (``<file>/<dotted key>`` -> number, where
``<file>`` is the metrics path without ``metrics/`` and ``.json``, e.g.
``classify/quadrant-logmel/f1_macro``) and flat params (``corpus.n_tracks``).
Versions come from:

* ``dvc exp show --json`` (``--exp``): the baseline commit and its experiments;
* git revisions (``--rev REV``): ``metrics/**/*.json`` and ``params.yaml`` at REV;
* folders (``--workspace DIR``): another checkout or copy of the project.

The table has one row per metric and one column per version (so it fits a
terminal however many metrics), the params whose values differ above it, and for
every version after the first its delta and relative delta against the first.

A change is marked only when it exceeds the noise the metrics record: where
``<metric>_std`` (the spread over seeds) exists in both versions, ``†`` marks
``|delta| > --noise-sigmas`` (default 2) x the pooled std ``sqrt((s1^2 + s2^2) / 2)``;
elsewhere ``*`` marks a relative change of at least ``--threshold``. A legend
under the table names the rule behind each mark used.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mgdata.errors import InputError


@dataclass
class Version:
    """One params version: a name, its flat metrics and flat params."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"a.b.c": value}`` (lists stay values)."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def metric_file_name(path: str) -> str:
    """``metrics/classify/x.json`` -> ``classify/x`` (the prefix of that file's metric names)."""
    p = path[len("metrics/") :] if path.startswith("metrics/") else path
    return p[: -len(".json")] if p.endswith(".json") else p


def _numbers(file_name: str, data: Any) -> dict[str, float]:
    out = {}
    for key, value in flatten(data).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{file_name}/{key}"] = float(value)
    return out


def version_from_dvc_data(name: str, data: dict[str, Any]) -> Version:
    """A version from one ``data`` block of ``dvc exp show --json``."""
    v = Version(name)
    for path, block in (data.get("metrics") or {}).items():
        v.metrics.update(_numbers(metric_file_name(path), (block or {}).get("data") or {}))
    for _, block in sorted((data.get("params") or {}).items()):
        v.params.update(flatten((block or {}).get("data") or {}))
    return v


def versions_from_exp_show(doc: list[dict[str, Any]], *, include_workspace: bool = False) -> list[Version]:
    """Versions from ``dvc exp show --json``: each baseline commit, then its experiments."""
    out = []
    for entry in doc:
        if entry.get("rev") == "workspace" and not include_workspace:
            continue
        if entry.get("data"):
            out.append(version_from_dvc_data(entry.get("name") or str(entry["rev"])[:7], entry["data"]))
        for exp in entry.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("data"):
                    out.append(version_from_dvc_data(rev.get("name") or exp.get("name") or rev["rev"][:7], rev["data"]))
    return out


def _dvc() -> str:
    here = Path(__file__).resolve()
    for cand in (Path.cwd() / ".venv/bin/dvc", here.parents[1] / ".venv/bin/dvc"):
        if cand.exists():
            return str(cand)
    found = shutil.which("dvc")
    if not found:
        raise InputError("dvc", "the dvc command is not installed (pip install dvc)")
    return found


def load_experiments(repo: str | Path = ".") -> list[Version]:
    """Run ``dvc exp show --json`` in ``repo`` and parse it."""
    proc = subprocess.run([_dvc(), "exp", "show", "--json"], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise InputError(str(repo), f"dvc exp show failed: {proc.stderr.strip().splitlines()[-1:]}")
    return versions_from_exp_show(json.loads(proc.stdout or "[]"))


def load_workspace(path: str | Path, name: str | None = None) -> Version:
    """A version from a folder: ``metrics/**/*.json`` and ``params.yaml``."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(str(root), "not a folder (expected a project checkout with metrics/ and params.yaml)")
    v = Version(name or str(path))
    for f in sorted((root / "metrics").rglob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(str(f), f"not valid JSON ({exc.__class__.__name__})") from None
        v.metrics.update(_numbers(metric_file_name(f.relative_to(root).as_posix()), data))
    params = root / "params.yaml"
    if params.exists():
        v.params.update(flatten(yaml.safe_load(params.read_text()) or {}))
    return v


def load_revision(rev: str, repo: str | Path = ".") -> Version:
    """A version from a git revision of ``repo`` (its committed metrics and params.yaml)."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        if proc.returncode != 0:
            raise InputError(rev, f"git {' '.join(args[:2])}: {proc.stderr.strip()}")
        return proc.stdout

    v = Version(rev)
    for path in git("ls-tree", "-r", "--name-only", rev, "--", "metrics").splitlines():
        if path.endswith(".json"):
            try:
                v.metrics.update(_numbers(metric_file_name(path), json.loads(git("show", f"{rev}:{path}"))))
            except json.JSONDecodeError:
                raise InputError(f"{rev}:{path}", "not valid JSON") from None
    try:
        v.params.update(flatten(yaml.safe_load(git("show", f"{rev}:params.yaml")) or {}))
    except InputError:
        pass  # a revision without params.yaml compares metrics only
    return v


# Marks of a delta, by the rule that fired (the legend repeats them under the table).
MARK_REL = "*"
MARK_NOISE = "†"
STD_SUFFIX = "_std"


@dataclass
class Comparison:
    """The compared table: versions, the metric names kept, the params that differ, the marking rules."""

    versions: list[Version]
    metrics: list[str]
    params: list[str]
    threshold: float
    noise_sigmas: float = 2.0

    def delta(self, metric: str, i: int) -> tuple[float | None, float | None]:
        """(absolute, relative) change of version ``i`` against the first; None where either is missing."""
        base = self.versions[0].metrics.get(metric)
        val = self.versions[i].metrics.get(metric)
        if base is None or val is None:
            return None, None
        rel = (val - base) / abs(base) if base != 0 else (0.0 if val == base else math.inf)
        return val - base, rel

    def pooled_std(self, metric: str, i: int) -> float | None:
        """``sqrt((s1^2 + s2^2) / 2)`` of ``<metric>_std`` in the first version and version ``i``.

        None where either version lacks the std, or both are 0 (a single seed records no spread, so it says
        nothing about noise): the relative threshold applies there.
        """
        s1 = self.versions[0].metrics.get(metric + STD_SUFFIX)
        s2 = self.versions[i].metrics.get(metric + STD_SUFFIX)
        if s1 is None or s2 is None or not (math.isfinite(s1) and math.isfinite(s2)):
            return None
        pooled = math.sqrt((s1 * s1 + s2 * s2) / 2)
        return pooled if pooled > 0 else None

    def mark(self, metric: str, i: int) -> str:
        """The mark of version ``i``'s change of ``metric``: :data:`MARK_NOISE`, :data:`MARK_REL` or ``""``.

        The noise rule, where it applies, replaces the relative one: a +10 % change within the seeds' spread is noise.
        """
        d, rel = self.delta(metric, i)
        if d is None or d == 0:
            return ""
        pooled = self.pooled_std(metric, i)
        if pooled is not None:
            return MARK_NOISE if abs(d) > self.noise_sigmas * pooled else ""
        return MARK_REL if rel is not None and abs(rel) >= self.threshold else ""

    def legend(self) -> list[str]:
        """One line per mark used in the table, naming its rule."""
        used = {self.mark(m, i) for m in self.metrics for i in range(1, len(self.versions))}
        lines = []
        if MARK_NOISE in used:
            lines.append(
                f"{MARK_NOISE} |delta| > {self.noise_sigmas:g} x pooled std sqrt((s1^2+s2^2)/2) of <metric>{STD_SUFFIX}"
                " (both versions record it)"
            )
        if MARK_REL in used:
            lines.append(f"{MARK_REL} |relative change| >= {self.threshold:g} (no {STD_SUFFIX} in both versions)")
        return lines

    def rows(self) -> list[list[str]]:
        """Header + one row per param that differs + one row per metric (values, then deltas)."""
        names = [v.name for v in self.versions]
        header = ["", *names, *[f"Δ {n}" for n in names[1:]]]
        rows = [header]
        for p in self.params:
            rows.append([f"param {p}", *[_fmt(v.params.get(p, "-")) for v in self.versions], *[""] * (len(names) - 1)])
        for m in self.metrics:
            cells = [_fmt(v.metrics.get(m, "-")) for v in self.versions]
            deltas = []
            for i in range(1, len(names)):
                d, rel = self.delta(m, i)
                if d is None:
                    deltas.append("-")
                    continue
                mark = self.mark(m, i)
                mark = f" {mark}" if mark else ""
                rel_s = "inf" if rel == math.inf else f"{rel:+.1%}"
                deltas.append(f"{d:+.4g} ({rel_s}){mark}")
            rows.append([m, *cells, *deltas])
        return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def compare(
    versions: list[Version],
    patterns: Iterable[str] = ("*",),
    *,
    threshold: float = 0.01,
    changed_only: bool = False,
    noise_sigmas: float = 2.0,
) -> Comparison:
    """Build the comparison of ``versions`` for the metrics matching any glob of ``patterns``.

    Args:
        versions: At least one version; the first is the baseline of the deltas.
        patterns: Globs over metric names (``classify/*/f1_macro``).
        threshold: Relative change (0.01 = 1 %) beyond which a delta is marked, for metrics without a ``_std``
            in both versions.
        changed_only: Keep only metrics whose value differs between versions.
        noise_sigmas: Where ``<metric>_std`` exists in both versions, a delta is marked when it exceeds this many
            pooled standard deviations.
    """
    if not versions:
        raise InputError("compare", "no versions to compare (no experiments, revisions or workspaces found)")
    patterns = list(patterns) or ["*"]
    names = sorted({m for v in versions for m in v.metrics})
    kept = [m for m in names if any(fnmatch.fnmatchcase(m, p) for p in patterns)]
    if changed_only:
        kept = [m for m in kept if len({v.metrics.get(m) for v in versions}) > 1]
    keys = sorted({k for v in versions for k in v.params})
    differing = [k for k in keys if len({json.dumps(v.params.get(k), sort_keys=True) for v in versions}) > 1]
    return Comparison(versions, kept, differing, threshold, noise_sigmas)


def render(cmp: Comparison, fmt: str = "table") -> str:
    """The comparison as ``table`` (aligned text), ``markdown`` or ``csv``."""
    rows = cmp.rows()
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        return buf.getvalue()
    legend = cmp.legend()
    if fmt == "markdown":
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "|" + "---|" * len(rows[0]))
        if legend:
            # A blank line ends the table; a backslash keeps markdown from reading a leading * as a list bullet,
            # two trailing spaces keep the legend lines apart.
            lines.append("")
            lines += [("\\" + ln if ln.startswith("*") else ln) + "  " for ln in legend]
        return "\n".join(lines) + "\n"
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in rows
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    if legend:
        out += ["", *legend]
    return "\n".join(out) + "\n"


def _cmd_compare(args) -> int:
    versions: list[Version] = []
    if args.exp:
        versions += load_experiments(args.repo)
    versions += [load_revision(r, args.repo) for r in args.rev]
    versions += [load_workspace(w) for w in args.workspace]
    if not (args.exp or args.rev or args.workspace):
        versions = load_experiments(args.repo)
    cmp = compare(
        versions,
        args.metrics or ["*"],
        threshold=args.threshold,
        changed_only=args.changed,
        noise_sigmas=args.noise_sigmas,
    )
    print(render(cmp, args.format), end="")
    return 0


def register_cli(sub) -> None:
    """Add ``mgdata compare``."""
    p = sub.add_parser(
        "compare",
        help="metrics side by side across params versions (DVC experiments, git revisions, workspaces)",
        description=__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--exp",
        action="store_true",
        help="the baseline and its DVC experiments (dvc exp show); the default when no --rev/--workspace is given",
    )
    p.add_argument("--rev", action="append", default=[], metavar="REV", help="a git revision or tag (repeatable)")
    p.add_argument(
        "--workspace",
        action="append",
        default=[],
        metavar="DIR",
        help="a project folder with metrics/ and params.yaml (repeatable)",
    )
    p.add_argument(
        "--metrics",
        action="append",
        default=[],
        metavar="GLOB",
        help="metric names to show, e.g. 'classify/*/f1_macro' (repeatable; default all)",
    )
    p.add_argument("--changed", action="store_true", help="only metrics whose value differs between versions")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.01,
        help="mark (*) relative changes at least this large, for metrics without a _std in both versions "
        "(default 0.01 = 1%%)",
    )
    p.add_argument(
        "--noise-sigmas",
        type=float,
        default=2.0,
        help="where <metric>_std exists in both versions, mark (†) changes larger than this many pooled stds "
        "(default 2)",
    )
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    p.add_argument("--repo", default=".", help="project folder for --exp/--rev (default: .)")
    p.set_defaults(func=_cmd_compare)

"""The decision stage's (segment_s x K) grid as one table: docs/decision_grid.csv and docs/decision_grid.md.

Collects ``metrics/decision/<encoder>-s<segment_s>-k<K>.json`` and ``stage_reports/decision/<same>.json`` of
every configuration found in a project folder (the workspace of the grid run)::

    dvc exp run -S 'tokens.segment_s=[0.25,0.35,0.5]' -S 'tokens.k=[16,64,256]'
    .venv/bin/python tools/decision_grid.py --project . --log grid_run.log --out-dir docs

One CSV row per configuration: seeds, the model's free-running TPP (mean and std over seeds, greedy), every
baseline's TPP (random, most frequent, argmax P(b|a), sampled P(b|a), context, model on shuffled A), the LCP of the
model and of the baselines, the constrained TPP of model and random, the p-values (each the LARGEST over seeds, as
the stage reports them, with the number of seeds below 0.05) and, given ``--log`` (the output of the grid run with
an ISO timestamp in front of every line), the wall time of the tokens and decision stages. Rows are sorted by
(encoder, segment_s, K) and floats have a fixed format, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from datetime import datetime
from pathlib import Path

NAME_RE = re.compile(r"^(?P<encoder>.+)-s(?P<segment_s>[0-9.]+)-k(?P<k>[0-9]+)$")
STAGE_RE = re.compile(r"Running stage '(?P<stage>(?:tokens|decision)@(?P<seg>[0-9.]+)-(?P<k>[0-9]+))'")
BASELINES = ("random", "most_frequent", "cond_argmax", "cond_sample", "cond_argmax_role", "context", "model_shuffled_a")
PVALUES = (
    "free_p_vs_random",
    "free_perm_p_vs_cond_argmax",
    "free_perm_p_vs_cond_argmax_role",
    "free_perm_p_vs_context",
    "constrained_p_vs_random",
)

#: CSV columns in order; value formats: "f2" TPP, "f3" LCP/loss, "e" p-values, "i" counts, "s" strings.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("encoder", "s"),
    ("segment_s", "s"),
    ("k", "i"),
    ("seeds", "s"),
    ("n_test_tracks", "i"),
    ("n_test_pairs", "i"),
    ("free_tpp_model", "f2"),
    ("free_tpp_model_std", "f2"),
    ("free_tpp_model_greedy", "f2"),
    *((f"free_tpp_{b}", "f2") for b in BASELINES),
    ("free_lcp_model", "f3"),
    ("free_lcp_model_std", "f3"),
    *((f"free_lcp_{b}", "f3") for b in BASELINES),
    ("constrained_tpp_model", "f2"),
    ("constrained_tpp_model_std", "f2"),
    ("constrained_tpp_random", "f2"),
    *((p, "e") for p in PVALUES),
    *((f"{p}_agree", "i") for p in PVALUES),
    ("best_val_loss", "f3"),
    ("epochs", "f2"),
    ("tokens_wall_s", "i"),
    ("decision_wall_s", "i"),
)


def _fmt(value, kind: str) -> str:
    if value is None or value == "":
        return ""
    if kind == "s":
        return str(value)
    if kind == "i":
        return str(int(round(float(value))))
    if kind == "f2":
        return f"{float(value):.2f}"
    if kind == "f3":
        return f"{float(value):.3f}"
    return f"{float(value):.2e}"  # "e"


def _seg_str(seg: str) -> str:
    return f"{float(seg):g}"


def stage_times(log_text: str) -> dict[str, float]:
    """Wall seconds of every ``tokens@``/``decision@`` stage in a timestamped ``dvc repro``/``exp run`` log.

    A stage runs from its "Running stage" line to the next "Updating lock file" line (DVC writes the lock after
    the stage's command exits), the next "Running stage" line or the grid script's ``END`` line, whichever comes
    first; keys are ``tokens@<segment_s>-<K>`` with segment_s in ``%g`` form.
    """
    out: dict[str, float] = {}
    current, start = None, None
    for line in log_text.splitlines():
        parts = line.split(" ", 1)
        if parts[0] == "END" and len(parts) == 2:  # the grid script's last line closes the last stage
            parts = [parts[1].split(" ", 1)[0], "Updating lock file"]
        if len(parts) != 2:
            continue
        try:
            ts = datetime.fromisoformat(parts[0].replace("Z", "+00:00"))
        except ValueError:
            continue
        m = STAGE_RE.search(parts[1])
        if m:
            if current is not None:  # `dvc repro` may write the lock once at the end: the next stage closes it
                out[current] = (ts - start).total_seconds()
            kind = m.group("stage").split("@")[0]
            current, start = f"{kind}@{_seg_str(m.group('seg'))}-{m.group('k')}", ts
        elif current is not None and "Updating lock file" in parts[1]:
            out[current] = (ts - start).total_seconds()
            current = None
    return out


def log_wall(log_text: str) -> float | None:
    """Wall seconds of the whole run: the ``wall_s=`` of the END line the grid script writes, if present."""
    m = re.search(r"wall_s=([0-9]+)", log_text)
    return float(m.group(1)) if m else None


def collect(project: Path, times: dict[str, float] | None = None) -> list[dict[str, str]]:
    """One formatted row per configuration of ``project`` (sorted by encoder, segment_s, K)."""
    times = times or {}
    rows = []
    for report_path in sorted((project / "stage_reports" / "decision").glob("*.json")):
        m = NAME_RE.match(report_path.stem)
        if not m:
            continue
        report = json.loads(report_path.read_text())
        metrics_path = project / "metrics" / "decision" / report_path.name
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        results = report.get("results", {})
        trials = results.get("trials", {})
        agg = {**metrics, **trials.get("aggregate", {})}
        seeds = ""
        if "n" in trials:
            first = int(trials.get("first_seed", 0))
            seeds = " ".join(str(first + i) for i in range(int(trials["n"])))
        lcp = results.get("free", {}).get("lcp_mean", {})
        seg = _seg_str(m.group("segment_s"))
        k = int(m.group("k"))
        raw = {
            "encoder": m.group("encoder"),
            "segment_s": seg,
            "k": k,
            "seeds": seeds,
            "n_test_tracks": report.get("test_tracks", results.get("n_test_tracks")),
            "n_test_pairs": report.get("test_pairs", results.get("n_test_pairs")),
            "free_lcp_model": agg.get("free_lcp_mean_model"),
            "free_lcp_model_std": agg.get("free_lcp_mean_model_std"),
            "tokens_wall_s": times.get(f"tokens@{seg}-{k}"),
            "decision_wall_s": times.get(f"decision@{seg}-{k}"),
        }
        for b in BASELINES:
            raw[f"free_lcp_{b}"] = lcp.get(b)
        for col, _ in COLUMNS:
            if col not in raw:
                raw[col] = agg.get(col)
        rows.append({col: _fmt(raw.get(col), kind) for col, kind in COLUMNS})
    rows.sort(key=lambda r: (r["encoder"], float(r["segment_s"]), int(r["k"])))
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[c for c, _ in COLUMNS], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _p(r: dict[str, str], key: str) -> str:
    """A p-value cell with its seed-agreement count; "-" for a run that did not compute it (older baselines)."""
    return f"{r[key]} ({r[f'{key}_agree']})" if r.get(key) else "-"


#: (header, cell) of the markdown table; cells read the CSV row.
MD_COLUMNS = (
    ("segment_s", lambda r: r["segment_s"]),
    ("K", lambda r: r["k"]),
    ("seeds", lambda r: r["seeds"]),
    ("model TPP", lambda r: f"{r['free_tpp_model']} ± {r['free_tpp_model_std']}"),
    ("random", lambda r: r["free_tpp_random"]),
    ("most freq.", lambda r: r["free_tpp_most_frequent"]),
    ("cond. argmax", lambda r: r["free_tpp_cond_argmax"]),
    ("cond. sample", lambda r: r["free_tpp_cond_sample"]),
    ("cond. argmax roles", lambda r: r["free_tpp_cond_argmax_role"] or "-"),
    ("context", lambda r: r["free_tpp_context"]),
    ("shuffled A", lambda r: r["free_tpp_model_shuffled_a"]),
    ("model LCP", lambda r: f"{r['free_lcp_model']} ± {r['free_lcp_model_std']}"),
    ("cond. argmax LCP", lambda r: r["free_lcp_cond_argmax"]),
    ("context LCP", lambda r: r["free_lcp_context"]),
    ("random LCP", lambda r: r["free_lcp_random"]),
    ("constr. TPP model / random", lambda r: f"{r['constrained_tpp_model']} / {r['constrained_tpp_random']}"),
    ("p vs random", lambda r: _p(r, "free_p_vs_random")),
    ("perm p vs cond. argmax", lambda r: _p(r, "free_perm_p_vs_cond_argmax")),
    ("perm p vs cond. argmax roles", lambda r: _p(r, "free_perm_p_vs_cond_argmax_role")),
    ("perm p vs context", lambda r: _p(r, "free_perm_p_vs_context")),
    ("constr. p vs random", lambda r: _p(r, "constrained_p_vs_random")),
    ("wall s tokens / decision", lambda r: f"{r['tokens_wall_s'] or '-'} / {r['decision_wall_s'] or '-'}"),
)


def to_markdown(rows: list[dict[str, str]], *, notes: str = "") -> str:
    """The readable table (markdown pipe table), ``notes`` (markdown paragraphs) above it."""
    lines = ["# The decision grid: segment_s x K", ""]
    if notes.strip():
        lines += [notes.strip(), ""]
    lines.append("| " + " | ".join(h for h, _ in MD_COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _ in MD_COLUMNS) + "|")
    for r in rows:
        lines.append("| " + " | ".join(cell(r) for _, cell in MD_COLUMNS) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", default=".", help="project folder with metrics/ and stage_reports/ (default: .)")
    p.add_argument(
        "--log",
        action="append",
        default=[],
        help="timestamped log of the grid run (per-stage wall times); repeat for several runs, later logs win",
    )
    p.add_argument("--out-dir", default="docs", help="where decision_grid.csv/.md go (default: docs)")
    p.add_argument("--notes", default=None, help="markdown file whose text goes above the table")
    args = p.parse_args(argv)
    times: dict[str, float] = {}
    for log in args.log:
        times.update(stage_times(Path(log).read_text()))
    rows = collect(Path(args.project), times)
    if not rows:
        print(f"decision_grid: no stage_reports/decision/*.json under {args.project}", file=sys.stderr)
        return 1
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decision_grid.csv").write_text(to_csv(rows))
    notes = Path(args.notes).read_text() if args.notes else ""
    (out / "decision_grid.md").write_text(to_markdown(rows, notes=notes))
    print(f"decision_grid: {len(rows)} configurations -> {out}/decision_grid.csv, {out}/decision_grid.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

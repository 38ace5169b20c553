"""Fault-injection suite fixtures: a tiny copy of the project, stage runs through subprocesses, a summary table.

The suite drives the real stage scripts exactly as ``dvc repro`` would (the commands come from the project's own
dvc.yaml, resolved by DVC with a tiny params.yaml), each in a subprocess with cwd = a temp project, so it tests
behaviour (exit codes, stderr lines, bytes on disk) and keeps working while the stage framework changes.
``STAGE_RUN`` below is the one place a stage is invoked.

Environment knobs: ``MGDATA_FAULTS_COMMIT_POINTS`` = ``all`` (every commit point of every stage) or N (default 3:
N seeded commit points, before and after, for the stages other than ``stems``, which always gets all of them);
``MGDATA_FAULTS_RANDOM`` = random kill moments per stage (default 10); ``MGDATA_FAULTS_SEED`` (default 0).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

# The project under test (default: this checkout); MGDATA_FAULTS_PROJECT points the suite at another tree.
MAIN = Path(os.environ.get("MGDATA_FAULTS_PROJECT") or Path(__file__).resolve().parents[2])
PYTHON = sys.executable
# Shard-writing stage families the suite covers (a DVC stage name before "@"); test_coverage fails when the
# pipeline gains a shard-writing stage missing here.
FAMILIES = ("corpus", "stems", "generate", "embed", "tokens")
# Stages known to write no shard artifact (tables, plots, summaries); any other stage with an output under data/
# must be in FAMILIES.
# decision (checkpoints: its own kill-and-resume test is tests/test_decision_model.py) and classify (probe
# folders) write models, not shards; geneval writes three files, each atomically (results.json, curves.csv,
# leaderboard.md), and reruns whole.
NOT_SHARD_WRITING = ("relabel", "tokens_summary", "report", "hub_pull", "decision", "classify", "geneval")

# Tiny-project overrides (dotted key -> value), applied to a copy of the project's params.yaml; a key the project
# does not have is left out (and listed in the summary), so the suite follows params changes.
TINY = {
    "shards.max_samples": 32,
    "corpus.n_tracks": 6,
    "corpus.composers": ["bach"],
    "corpus.max_duration_s": 8.0,
    "stems.window_s": 4.0,
    "stems.overlap_s": 2.0,
    "generate.generators": ["resynth"],
    "generate.fraction": 0.5,
    "embed.embedders": ["logmel"],
    "embed.artifacts": [{"name": "corpus", "path": "data/corpus/mix"}],
    "embed.scenario_names": ["clean"],
    "tokens.segment_s": [0.5],
    "tokens.k": [4],
    "tokens.max_iter": 5,
    "tokens.n_init": 1,
    "tokens.frames_cache": "",
    "executor.backend": "serial",
}

# ------------------------------------------------------------------------------------------------ summary table

RESULTS: list[dict] = []
NOTES: list[str] = []  # lines printed under the table (e.g. tiny-params overrides the project no longer has)


def record(category: str, stage: str, case: str, outcome: str, ok: bool) -> None:
    """One row of the end-of-session table (category: kill | corruption | bad input)."""
    RESULTS.append({"category": category, "stage": stage, "case": case, "outcome": outcome, "ok": ok})


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("fault-injection summary")
    by = defaultdict(lambda: [0, 0])
    for r in RESULTS:
        by[(r["category"], r["stage"])][0] += 1
        by[(r["category"], r["stage"])][1] += int(r["ok"])
    tr.write_line(f"{'category':<12} {'stage':<10} {'cases':>5} {'as expected':>11}")
    for (cat, stage), (n, ok) in sorted(by.items()):
        tr.write_line(f"{cat:<12} {stage:<10} {n:>5} {ok:>11}")
    tot, ok = len(RESULTS), sum(r["ok"] for r in RESULTS)
    tr.write_line(f"{'total':<23} {tot:>5} {ok:>11}")
    outcomes = defaultdict(int)
    for r in RESULTS:
        short = r["outcome"].split(":")[0][:70]
        outcomes[(r["category"], "ok" if r["ok"] else "NOT OK", short)] += 1
    tr.write_line("outcomes:")
    for (cat, flag, short), n in sorted(outcomes.items()):
        tr.write_line(f"  {cat:<12} {flag:<6} {n:>4} x {short}")
    bad = [r for r in RESULTS if not r["ok"]]
    if bad:
        tr.write_line("not as expected:")
        for r in bad:
            tr.write_line(f"  [{r['category']}] {r['stage']} {r['case']}: {r['outcome']}"[:400])
    for note in NOTES:
        tr.write_line(f"note: {note}")
    out = os.environ.get("MGDATA_FAULTS_TABLE")
    if out:
        Path(out).write_text(json.dumps(RESULTS, indent=1) + "\n")


# ------------------------------------------------------------------------------------------------ tiny project


def _set(params: dict, dotted: str, value) -> bool:
    *parents, leaf = dotted.split(".")
    node = params
    for p in parents:
        if not isinstance(node.get(p), dict):
            return False
        node = node[p]
    if leaf not in node:
        return False
    node[leaf] = value
    return True


def tiny_params(src: Path = MAIN / "params.yaml") -> tuple[dict, list[str]]:
    """The project's params with TINY applied; and the override keys the project does not have."""
    params = yaml.safe_load(src.read_text())
    missing = [k for k, v in TINY.items() if not _set(params, k, v)]
    return params, missing


@dataclass(eq=False)
class Stage:
    """One resolved DVC stage: name, command (argv), outputs and dependencies (paths relative to the project)."""

    name: str
    argv: list[str]
    outs: list[str]
    deps: list[str]

    @property
    def family(self) -> str:
        return self.name.split("@")[0]

    @property
    def script(self) -> str:
        return next(a for a in self.argv if a.endswith(".py"))


def resolve_stages(root: Path) -> list[Stage]:
    """The pipeline's stages as DVC resolves them with root/params.yaml, in dependency order."""
    code = (
        "import json,sys\nfrom dvc.repo import Repo\nr=Repo(sys.argv[1])\n"
        "print(json.dumps([{'name':s.addressing,'cmd':s.cmd,'outs':[str(o.def_path) for o in s.outs],"
        "'deps':[str(d.def_path) for d in s.deps]} for s in r.index.stages]))"
    )
    res = subprocess.run([PYTHON, "-c", code, str(root)], capture_output=True, text=True, cwd=root, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"dvc could not resolve dvc.yaml: {res.stderr.strip().splitlines()[-1:]}")
    stages = [Stage(d["name"], shlex.split(d["cmd"]), d["outs"], d["deps"]) for d in json.loads(res.stdout)]
    # dependency order: a stage runs after every stage one of whose outs it depends on
    order: list[Stage] = []
    pending = list(stages)
    while pending:
        for st in pending:
            ups = [o for o in pending if o is not st and any(_under(d, out) for d in st.deps for out in o.outs)]
            if not ups:
                order.append(st)
                pending.remove(st)
                break
        else:
            raise RuntimeError("dependency cycle in dvc.yaml")
    return order


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def digest_tree(root: Path, paths: list[str]) -> dict[str, str]:
    """sha256 of every file under the given paths (relative to root)."""
    out = {}
    for rel in paths:
        p = root / rel
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.exists() else []
        for f in files:
            out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def is_temporary(name: str) -> bool:
    """A name the store uses for unfinished files (never read by a reader trusting artifact.json)."""
    return ".tmp" in name or name.startswith(".") or name.endswith(".part") or ".lock" in name


@dataclass
class Project:
    """A tiny copy of the project in ``root`` (params.yaml, dvc.yaml, stages -> the real scripts)."""

    root: Path
    stages: list[Stage] = field(default_factory=list)
    missing_overrides: list[str] = field(default_factory=list)

    def stage(self, family_or_name: str) -> Stage:
        for st in self.stages:
            if st.name == family_or_name or st.family == family_or_name:
                return st
        raise LookupError(f"no stage {family_or_name!r} in dvc.yaml (have {[s.name for s in self.stages]})")

    def copy(self, dest: Path) -> Project:
        shutil.copytree(self.root, dest, symlinks=True)
        return Project(dest, self.stages, self.missing_overrides)

    def run(
        self,
        stage: Stage | str,
        *,
        kill: str | None = None,
        kill_after_s: float | None = None,
        timer_from_replace: int = 0,
        trace: Path | None = None,
        argv: list[str] | None = None,
        timeout: float = 600,
        env: dict | None = None,
    ) -> subprocess.CompletedProcess:
        return STAGE_RUN(
            self,
            stage if isinstance(stage, Stage) else self.stage(stage),
            kill=kill,
            kill_after_s=kill_after_s,
            timer_from_replace=timer_from_replace,
            trace=trace,
            argv=argv,
            timeout=timeout,
            env=env,
        )

    def wipe_outs(self, stage: Stage) -> None:
        for rel in stage.outs:
            p = self.root / rel
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def digest(self, stage: Stage) -> dict[str, str]:
        return digest_tree(self.root, stage.outs)

    def artifacts(self, stage: Stage) -> list[Path]:
        """Artifact folders (holding artifact.json) among the stage's outputs."""
        found = []
        for rel in stage.outs:
            p = self.root / rel
            if p.is_dir():
                found += sorted(a.parent for a in p.rglob("artifact.json"))
        return found


def STAGE_RUN(
    project: Project,
    stage: Stage,
    *,
    kill=None,
    kill_after_s=None,
    timer_from_replace=0,
    trace=None,
    argv=None,
    timeout=600,
    env=None,
) -> subprocess.CompletedProcess:
    """Run one stage as DVC would (its dvc.yaml command, cwd = the project), through the fault launcher.

    ``argv`` replaces the stage's command (``["python", "stages/x.py", ...]`` form) for bad-input cases.
    """
    cmd = list(argv or stage.argv)
    # `python stages/x.py ...` or a wrapper (`stages/py stages/x.py ...`): the launcher takes the script on.
    at = next((i for i, a in enumerate(cmd) if a.endswith(".py")), None)
    assert at is not None, f"stage {stage.name}: no python script in its command: {cmd}"
    launcher = [PYTHON, "-m", "mgdata.testing.faults"]
    if kill:
        launcher += ["--kill-at", kill]
    if kill_after_s is not None:
        launcher += ["--kill-after", f"{kill_after_s:.3f}", "--timer-from-replace", str(timer_from_replace)]
    if trace:
        launcher += ["--trace", str(trace)]
    full_env = dict(
        os.environ,
        PATH=f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONHASHSEED="0",
        MPLBACKEND="Agg",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TQDM_DISABLE="1",
    )
    full_env.update(env or {})
    return subprocess.run(
        [*launcher, *cmd[at:]],
        cwd=project.root,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def make_project(root: Path) -> Project:
    """Write the tiny project into root and resolve its stages."""
    root.mkdir(parents=True, exist_ok=True)
    params, missing = tiny_params()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(MAIN / "dvc.yaml", root / "dvc.yaml")
    (root / "stages").symlink_to(MAIN / "stages")
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    return Project(root, resolve_stages(root), missing)


@dataclass
class Reference:
    """An uninterrupted run of the whole tiny pipeline: the project, each stage's result, digests and traces."""

    project: Project
    results: dict[str, subprocess.CompletedProcess]
    digests: dict[str, dict[str, str]]
    traces: dict[str, list[dict]]
    seconds: dict[str, float]

    def require(self, family: str) -> Stage:
        st = self.project.stage(family)
        res = self.results.get(st.name)
        if res is None or res.returncode != 0:
            if res is None:
                ups = [
                    u.name
                    for u in _upstream(self.project, st)
                    if self.results.get(u.name) is not None and self.results[u.name].returncode != 0
                ]
                pytest.fail(
                    f"reference run of {st.name}: not run, upstream failed: "
                    + "; ".join(f"{u}: {self.results[u].stderr.strip()[-800:]}" for u in ups)
                )
            pytest.fail(f"reference run of {st.name} exited {res.returncode}: {res.stderr.strip()[-1500:]}")
        return st


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Reference:
    """Run every stage of the tiny pipeline once (in dependency order), uninterrupted, with commit traces."""
    proj = make_project(tmp_path_factory.mktemp("faults") / "ref")
    if proj.missing_overrides:
        NOTES.append(f"tiny-params overrides not applied (keys absent from params.yaml): {proj.missing_overrides}")
    results, digests, traces, seconds = {}, {}, {}, {}
    failed: set[str] = set()
    wanted = {proj.stage(f).name for f in FAMILIES if any(s.family == f for s in proj.stages)}
    for st in proj.stages:
        needed = wanted | {u.name for w in wanted for u in _upstream(proj, proj.stage(w))}
        if st.name not in needed:
            continue
        if any(u.name in failed for u in _upstream(proj, st)):
            failed.add(st.name)
            continue
        trace = proj.root / f".trace-{st.name}.jsonl"
        t0 = time.monotonic()
        res = proj.run(st, trace=trace)
        seconds[st.name] = time.monotonic() - t0
        results[st.name] = res
        if res.returncode != 0:
            failed.add(st.name)
        digests[st.name] = proj.digest(st)
        traces[st.name] = [json.loads(x) for x in trace.read_text().splitlines()] if trace.exists() else []
        trace.unlink(missing_ok=True)
    return Reference(proj, results, digests, traces, seconds)


def _upstream(proj: Project, st: Stage) -> list[Stage]:
    ups = [o for o in proj.stages if o is not st and any(_under(d, out) for d in st.deps for out in o.outs)]
    out = []
    for u in ups:
        out += [x for x in [*_upstream(proj, u), u] if x not in out]
    return out


@pytest.fixture
def fresh(reference, tmp_path):
    """A copy of the reference project after its full run (tests wipe/corrupt what they need)."""
    return reference.project.copy(tmp_path / "proj")


def last_line(text: str) -> str:
    """The last meaningful line of a stage's stderr (progress-bar redraws dropped), for the summary table."""
    lines = [x.strip() for x in text.replace("\r", "\n").splitlines()]
    lines = [x for x in lines if x and "%|" not in x and "it/s]" not in x]
    return lines[-1][:240] if lines else ""


def one_line_error(res: subprocess.CompletedProcess) -> str:
    """The stage's error output when it is one line and not a traceback, else ''."""
    lines = [x for x in res.stderr.splitlines() if x.strip() and not x.startswith(("INFO ", "DEBUG ", "WARNING "))]
    if "Traceback (most recent call last)" in res.stderr or len(lines) != 1:
        return ""
    return lines[0]

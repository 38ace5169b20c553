"""Fault injection for the reliability suite (tests/faults): kill at a commit point, flip bytes, bad inputs.

Everything here acts on a stage from the outside, as a crash, a bad disk or a hostile user would, so the suite
tests behaviour (exit codes, stderr, bytes on disk) and not internals:

* The launcher ``python -m mgdata.testing.faults [--kill-at SPEC] [--kill-after S] [--trace FILE] SCRIPT ARGS...``
  runs a stage script in this process with ``os.replace``/``os.rename`` wrapped: every call is a commit point (the
  store publishes shards, indexes, side files and ``artifact.json`` by renaming a finished temp file). With
  ``--kill-at replace:N[:before|after]`` the process group is SIGKILLed just before or just after the N-th call
  (1-based), with ``--kill-at dst:PATH[:before|after]`` around the first rename onto PATH, with ``--kill-after S``
  S seconds after start (a "random moment" when S is drawn by the caller); with
  ``--trace`` each call is appended to FILE as a JSON line (``n``, ``op``, ``src``, ``dst``, ``t_s`` since start),
  which gives the list of commit points of an uninterrupted run. Worker processes forked by the stage pass
  through unwrapped (only the stage's own process counts).
* Byte-level corruption: :func:`flip_bytes`, :func:`tar_members` (offsets of each member's header and data),
  :func:`truncate`.
* Bad-input factories: :func:`bad_audio_bytes` (truncated, empty, NaN, silent, wrong rate, wrong channel count),
  :func:`unsafe_tar` (``../`` and absolute names, symlink, hard link), :func:`write_bad_artifact` (a valid,
  checksummed corpus-layout artifact in which one sample carries a bad input).
"""

from __future__ import annotations

import io
import json
import os
import runpy
import signal
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KILL_ENV = "MGDATA_FAULT_KILL_AT"
TRACE_ENV = "MGDATA_FAULT_TRACE"


@dataclass(frozen=True)
class KillSpec:
    """Where to SIGKILL: around one ``os.replace``/``os.rename`` call of the stage process.

    Attributes:
        n: Commit point number, 1-based, in call order (``replace:N``), or None.
        dst: Destination path relative to the working directory (``dst:PATH``): the first call renaming onto it.
        when: ``before`` (the temp file is complete, not yet renamed) or ``after`` (renamed, nothing after it ran).
    """

    n: int | None = None
    dst: str | None = None
    when: str = "before"

    @classmethod
    def parse(cls, text: str) -> KillSpec:
        """``replace:N[:before|after]`` or ``dst:PATH[:before|after]`` (default before)."""
        kind, _, rest = text.partition(":")
        when = "before"
        for w in ("before", "after"):
            if rest.endswith(":" + w):
                rest, when = rest[: -len(w) - 1], w
        if kind == "replace" and rest.isdigit() and int(rest) >= 1:
            return cls(n=int(rest), when=when)
        if kind == "dst" and rest:
            return cls(dst=os.path.normpath(rest), when=when)
        raise ValueError(f"kill spec {text!r}: expected replace:N[:before|after] (N >= 1) or dst:PATH[:before|after]")

    def matches(self, n: int, dst: str) -> bool:
        """Whether the ``n``-th call, renaming onto ``dst``, is this commit point."""
        if self.n is not None:
            return n == self.n
        rel = os.path.normpath(os.path.relpath(os.path.abspath(dst)))
        return rel == self.dst

    def __str__(self) -> str:
        return f"replace:{self.n}:{self.when}" if self.n is not None else f"dst:{self.dst}:{self.when}"


def _die() -> None:
    """SIGKILL the whole process group (the stage and any workers it forked); no cleanup code runs."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - dying anyway
        pass
    try:
        if os.getpgid(0) == os.getpid():  # only when the launcher leads its own group (start_new_session)
            os.killpg(os.getpgid(0), signal.SIGKILL)
    finally:
        os.kill(os.getpid(), signal.SIGKILL)


def install(
    kill: KillSpec | None = None,
    trace: str | Path | None = None,
    kill_after_s: float | None = None,
    timer_from_replace: int = 0,
) -> None:
    """Wrap ``os.replace`` and ``os.rename`` in this process (see the module docstring).

    Args:
        kill: Commit point to die at.
        trace: JSON-lines file receiving one record per commit point.
        kill_after_s: Also die this many seconds after the timer starts (a thread), wherever the stage is.
        timer_from_replace: Start that timer just after the N-th commit point (0: now), so a "random moment"
            lands between two given commits of this run whatever its start-up time.
    """
    import threading

    owner = os.getpid()
    t0 = time.monotonic()
    count = [0]
    trace_fh = open(trace, "a", buffering=1) if trace else None  # noqa: SIM115 - lives as long as the process

    def start_timer() -> None:
        timer = threading.Timer(kill_after_s, _die)
        timer.daemon = True
        timer.start()

    if kill_after_s is not None and timer_from_replace <= 0:
        start_timer()

    def wrap(op: str, real):
        def wrapped(src, dst, *args, **kwargs):
            if os.getpid() != owner:
                return real(src, dst, *args, **kwargs)
            count[0] += 1
            n = count[0]
            if trace_fh is not None:
                rec = {"n": n, "op": op, "src": os.fspath(src), "dst": os.fspath(dst), "t_s": time.monotonic() - t0}
                trace_fh.write(json.dumps(rec) + "\n")
            hit = kill is not None and kill.matches(n, os.fspath(dst))
            if hit and kill.when == "before":
                _die()
            out = real(src, dst, *args, **kwargs)
            if hit and kill.when == "after":
                _die()
            if kill_after_s is not None and n == timer_from_replace:
                start_timer()
            return out

        return wrapped

    os.replace = wrap("replace", os.replace)
    os.rename = wrap("rename", os.rename)


def run_with_kill_at(
    script: str | Path,
    argv: Sequence[str],
    kill: KillSpec | str | None = None,
    trace: str | Path | None = None,
    kill_after_s: float | None = None,
    timer_from_replace: int = 0,
) -> int:
    """Run ``script`` as ``__main__`` with ``argv`` in this process, commit points wrapped; returns its exit code."""
    if isinstance(kill, str):
        kill = KillSpec.parse(kill)
    install(kill, trace, kill_after_s, timer_from_replace)
    script = str(script)
    sys.argv = [script, *argv]
    sys.path.insert(0, str(Path(script).resolve().parent))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


LAUNCHER_OPTIONS = {
    "--kill-at": "replace:N[:before|after] or dst:PATH[:before|after] (default: $MGDATA_FAULT_KILL_AT)",
    "--kill-after": "also SIGKILL this many seconds after the timer starts",
    "--timer-from-replace": "start the --kill-after timer at the N-th commit point instead of at start (default 0)",
    "--trace": "append one JSON line per commit point to this file (default: $MGDATA_FAULT_TRACE)",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Launcher entry point (``python -m mgdata.testing.faults [OPTIONS] SCRIPT ARGS...``).

    Options are read only before SCRIPT, so the stage's own arguments (``--k``, ``--out-dir`` ...) pass through
    untouched (argparse would take ``--k`` as an abbreviation of ``--kill-at``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    opts = {
        "--kill-at": os.environ.get(KILL_ENV) or None,
        "--trace": os.environ.get(TRACE_ENV) or None,
        "--kill-after": None,
        "--timer-from-replace": "0",
    }
    while args and args[0].startswith("-"):
        name = args.pop(0)
        if name in ("-h", "--help"):
            print(__doc__)
            for k, v in LAUNCHER_OPTIONS.items():
                print(f"  {k}: {v}")
            return 0
        name, eq, value = name.partition("=")
        if name not in LAUNCHER_OPTIONS:
            print(f"faults launcher: unknown option {name} (known: {', '.join(LAUNCHER_OPTIONS)})", file=sys.stderr)
            return 2
        opts[name] = value if eq else args.pop(0)
    if not args:
        print("faults launcher: missing SCRIPT", file=sys.stderr)
        return 2
    kill_after = float(opts["--kill-after"]) if opts["--kill-after"] is not None else None
    return run_with_kill_at(
        args[0], args[1:], opts["--kill-at"], opts["--trace"], kill_after, int(opts["--timer-from-replace"])
    )


# --------------------------------------------------------------------------------------------- byte corruption


def flip_bytes(path: str | Path, offset: int, n: int = 16) -> None:
    """XOR ``n`` bytes at ``offset`` with 0xFF (in place; size unchanged)."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    if offset < 0 or offset + n > len(data):
        raise ValueError(f"{path}: cannot flip {n} bytes at {offset} of {len(data)}")
    for i in range(offset, offset + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: str | Path, keep: float | int = 0.5) -> None:
    """Cut a file to ``keep`` bytes (int) or to that fraction of its size (float)."""
    path = Path(path)
    size = path.stat().st_size
    n = keep if isinstance(keep, int) else int(size * keep)
    with open(path, "r+b") as fh:
        fh.truncate(n)


@dataclass(frozen=True)
class TarMember:
    """Where one member sits in a tar: header offset, data offset and size (bytes)."""

    name: str
    header_offset: int
    data_offset: int
    size: int


def tar_members(path: str | Path) -> list[TarMember]:
    """Members of a tar in file order, with their byte offsets."""
    with tarfile.open(path, "r:") as tf:
        return [TarMember(m.name, m.offset, m.offset_data, m.size) for m in tf.getmembers()]


def find_member(path: str | Path, suffix: str) -> TarMember:
    """The first member whose name ends with ``suffix`` (e.g. ``.flac``, ``.json``)."""
    for m in tar_members(path):
        if m.name.endswith(suffix):
            return m
    raise LookupError(f"{path}: no member ending in {suffix!r}")


# --------------------------------------------------------------------------------------------- bad inputs

BAD_AUDIO_KINDS = ("truncated", "empty", "nan", "silent", "wrong_rate", "wrong_channels")


def _flac(x: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, sr, format="FLAC", subtype=subtype)
    return buf.getvalue()


def _wav_float(x: np.ndarray, sr: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def bad_audio_bytes(kind: str, sr: int, duration_s: float = 6.0) -> tuple[bytes, str]:
    """Encoded audio of one bad kind, and the member extension it must be stored under.

    Kinds: ``truncated`` (a FLAC cut in half), ``empty`` (zero bytes), ``nan`` (float WAV holding NaN/inf, stored
    as a ``flac`` member: a decoder sees a WAV, which soundfile reads; FLAC cannot hold NaN), ``silent`` (digital
    silence), ``wrong_rate`` (a tone at ``sr // 2`` while the record declares ``sr``), ``wrong_channels`` (6
    channels).
    """
    t = np.arange(int(duration_s * sr)) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    if kind == "truncated":
        data = _flac(tone, sr)
        return data[: len(data) // 2], "flac"
    if kind == "empty":
        return b"", "flac"
    if kind == "nan":
        x = tone.copy()
        x[len(x) // 3 : len(x) // 2] = np.nan
        x[len(x) // 2] = np.inf
        return _wav_float(x, sr), "flac"
    if kind == "silent":
        return _flac(np.zeros_like(tone), sr), "flac"
    if kind == "wrong_rate":
        half = sr // 2
        t2 = np.arange(int(duration_s * half)) / half
        return _flac((0.3 * np.sin(2 * np.pi * 220.0 * t2)).astype(np.float32), half), "flac"
    if kind == "wrong_channels":
        return _flac(np.stack([tone] * 6, axis=1), sr), "flac"
    raise ValueError(f"unknown bad audio kind {kind!r} (known: {', '.join(BAD_AUDIO_KINDS)})")


UNSAFE_MEMBER_KINDS = ("dotdot", "absolute", "symlink", "hardlink")


def unsafe_tar(path: str | Path, kind: str, good: dict[str, bytes]) -> str:
    """Write a tar holding the ``good`` members plus one unsafe member; returns the unsafe member's name.

    Kinds: ``dotdot`` (``../../evil.json``), ``absolute`` (``/tmp/evil.json``), ``symlink`` (a ``.json`` member
    linking to ``/etc/passwd``), ``hardlink`` (a ``.json`` hard link to ``/etc/passwd``).
    """
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in good.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        if kind in ("dotdot", "absolute"):
            name = "../../evil.json" if kind == "dotdot" else "/tmp/evil.json"
            data = b'{"key": "evil"}'
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
            return name
        if kind in ("symlink", "hardlink"):
            name = "evil-000.json"
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            ti.linkname = "/etc/passwd"
            tf.addfile(ti)
            return name
    raise ValueError(f"unknown unsafe member kind {kind!r} (known: {', '.join(UNSAFE_MEMBER_KINDS)})")


def write_bad_artifact(
    out_dir: str | Path,
    kind: str,
    *,
    n_tracks: int = 6,
    n_stems: int = 3,
    duration_s: float = 6.0,
    sr: int = 22050,
    seed: int = 0,
) -> str:
    """A corpus-layout artifact (``mix/``, ``stems/``, ``manifest.parquet``) in which one track's audio is bad.

    The artifact itself is valid (written by the store, checksums match): the fault is in the *content*, so a
    stage reading it must treat it as bad input (skip + count with a deterministic reason, or a one-line error),
    not as corruption. The first training track's mix and first stem carry :func:`bad_audio_bytes` of ``kind``.

    Returns:
        The bad track's id (what a skip reason or an error line must name).
    """
    import shutil

    from mgdata.config import ShardConfig
    from mgdata.provenance import Provenance
    from mgdata.store import ArtifactWriter, Sample, decode_json, encode_json, iter_samples, read_artifact_info
    from mgdata.testing import make_corpus_artifact

    out_dir = Path(out_dir)
    make_corpus_artifact(out_dir, n_tracks=n_tracks, n_stems=n_stems, duration_s=duration_s, sr=sr, seed=seed)
    bad, _ = bad_audio_bytes(kind, sr, duration_s)
    bad_track = None
    for sub in ("mix", "stems"):
        art = out_dir / sub
        info = read_artifact_info(art)
        samples = list(iter_samples(art))
        if bad_track is None:
            bad_track = next(
                decode_json(s["json"])["track_id"] for s in samples if decode_json(s["json"]).get("split") == "train"
            )
        tmp = out_dir / f".{sub}.rewrite"
        hit = False
        with ArtifactWriter(
            tmp,
            fingerprint=info["fingerprint"] + f"-bad-{kind}",
            provenance=Provenance.from_dict(info["provenance"]),
            shards=ShardConfig(max_samples=4),
        ) as w:
            for s in samples:
                members = {k: v for k, v in s.items() if not k.startswith("__")}
                rec = decode_json(members["json"])
                if rec.get("track_id") == bad_track and not hit:
                    members["flac"] = bad
                    hit = sub == "stems"  # every mix sample of the track (one), only the first stem
                w.write(
                    s["__split__"],
                    Sample(
                        s["__key__"],
                        {k: bytes(v) for k, v in members.items()},
                        seconds=float(rec.get("duration_s", 0.0)),
                        labels=tuple(rec.get("tags", ())) if sub == "mix" else (),
                    ),
                )
                members["json"] = encode_json(rec)
        shutil.rmtree(art)
        tmp.rename(art)
    return bad_track


if __name__ == "__main__":
    sys.exit(main())

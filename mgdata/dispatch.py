"""Pin the SIMD code paths that numpy, OpenBLAS, MKL, oneDNN, torch and numba pick, before they load.

Why: each of these libraries chooses its kernels at run time from the CPU it finds (SSE, AVX2, AVX-512,
AMX). Different kernels round differently, so the same embedding, codebook or model trained on an AVX2-only
machine and on an AVX-512 one differ in the last bits, and every DVC hash downstream moves. mgdata therefore
runs every stage, worker and test at one fixed level, ``avx2`` (x86-64-v3: any Intel Haswell or AMD Zen CPU
and newer), whatever the machine offers beyond it.

The level is chosen by ``$MGDATA_DISPATCH``:

- ``avx2`` (default): the pinned level every committed output was written at;
- ``sse42``: a second, lower level (x86-64-v2) that CI runs the fast tests under, so a test that depends on the
  CPU's instruction set fails on every machine rather than on some;
- ``native``: no pin; each library picks its best kernels (faster on AVX-512, bytes may differ).

Each variable is set with ``os.environ.setdefault``: a value the user (or the machine) already exported wins,
and :func:`effective` reports what the libraries really use. The variables only act when a library loads, so
:func:`pin` must run before numpy or torch is imported: ``mgdata/__init__.py`` calls it first, which covers the
stage scripts, the CLI, pytest (``tests/conftest.py`` imports mgdata before anything else) and the executor's
workers (process workers inherit the environment; Ray workers get it through ``runtime_env``).

What is pinned (names for the library versions in ``constraints.txt``; other versions may name features
differently, so installs outside the constraints are not byte-reproducible):

=================================  ==============================  =====================================
variable                           ``avx2``                        read by
=================================  ==============================  =====================================
``NPY_DISABLE_CPU_FEATURES``       ``X86_V4 AVX512_ICL AVX512_SPR``  numpy's dispatched ufunc loops, sorts
``OPENBLAS_CORETYPE``              ``Haswell``                     OpenBLAS (numpy's and scipy's copies)
``MKL_CBWR``                       ``AVX2,STRICT``                 MKL (torch's BLAS): conditional
                                                                   numerical reproducibility
``MKL_ENABLE_INSTRUCTIONS``        ``AVX2``                        MKL's kernel choice
``ONEDNN_MAX_CPU_ISA``             ``AVX2``                        oneDNN (torch's mkldnn kernels)
``ATEN_CPU_CAPABILITY``            ``avx2``                        torch's vectorised ATen kernels
``NUMBA_CPU_NAME``                 ``haswell``                     numba's JIT (librosa's helpers)
=================================  ==============================  =====================================

Not pinnable, and why the outputs still match: FFTs (scipy.fft / numpy.fft pocketfft and soxr) are compiled
for a fixed instruction set and do not dispatch; polars and pyarrow are compiled for x86-64-v3 and check it at
import. ARM (aarch64) machines run other kernels altogether: their outputs are deterministic but not
byte-equal to the x86-64 ones.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings

ENV_VAR = "MGDATA_DISPATCH"
DEFAULT_LEVEL = "avx2"

LEVELS: dict[str, dict[str, str]] = {
    "avx2": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Haswell",
        "MKL_CBWR": "AVX2,STRICT",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "NUMBA_CPU_NAME": "haswell",
    },
    "sse42": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Nehalem",
        "MKL_CBWR": "SSE4_2",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "ATEN_CPU_CAPABILITY": "default",
        "NUMBA_CPU_NAME": "nehalem",
    },
    "native": {},
}

# What each level's libraries should report back (see effective()): numpy's top enabled dispatch target,
# OpenBLAS's kernel family, torch's ATen capability.
EXPECTED = {
    "avx2": {"numpy": "X86_V3", "openblas": "Haswell", "torch": "AVX2"},
    "sse42": {"numpy": "X86_V2", "openblas": "Nehalem", "torch": "DEFAULT"},
}

# platform.machine() of the architectures whose feature names LEVELS uses.
_X86_64 = ("x86_64", "amd64")

# numpy's dispatch targets in the order they build on each other (numpy >= 2.4 names).
_NUMPY_TARGETS = ("X86_V2", "X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR")


def level() -> str:
    """The dispatch level asked for by ``$MGDATA_DISPATCH`` (default ``avx2``).

    Raises:
        ValueError: the variable names no known level.
    """
    name = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT_LEVEL
    if name not in LEVELS:
        raise ValueError(f"{ENV_VAR}={name!r}: expected one of {sorted(LEVELS)}")
    return name


def pinned_env(name: str | None = None) -> dict[str, str]:
    """The environment variables of a level (``$MGDATA_DISPATCH`` by default), e.g. for a Ray ``runtime_env``."""
    return dict(LEVELS[name or level()])


def pin() -> str:
    """Export the level's variables (existing values win); warn if a library was loaded before this ran.

    Only on x86-64: elsewhere nothing is exported and the level is ``native``.

    Returns:
        The level name in force.
    """
    name = level()
    if platform.machine().lower() not in _X86_64:
        # The variables name x86 features (numpy refuses unknown ones at import, numba an unknown CPU): on ARM and
        # other architectures nothing is pinned; outputs are deterministic there but not the x86-64 bytes.
        os.environ.setdefault(ENV_VAR, "native")
        return "native"
    env = LEVELS[name]
    for key, value in env.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault(ENV_VAR, name)  # worker processes see the same level, whatever imports them
    early = [m for m in ("numpy", "torch") if m in sys.modules]
    if env and early:
        warnings.warn(
            f"mgdata.dispatch: {', '.join(early)} was imported before mgdata, so the {name} dispatch pin may not "
            "apply to it (import mgdata first; outputs may differ in the last bits between machines)",
            RuntimeWarning,
            stacklevel=2,
        )
    return name


def effective() -> dict[str, str]:
    """What the loaded libraries actually dispatch to (imports numpy, torch and threadpoolctl).

    Returns:
        ``{"level": ..., "numpy": top enabled target, "openblas": kernel family(ies), "torch": capability}``.
    """
    import numpy  # noqa: F401 - loads OpenBLAS for threadpoolctl
    from numpy._core._multiarray_umath import __cpu_features__

    out = {"level": os.environ.get(ENV_VAR, DEFAULT_LEVEL)}
    enabled = [t for t in _NUMPY_TARGETS if __cpu_features__.get(t)]
    out["numpy"] = enabled[-1] if enabled else "baseline"
    try:
        from threadpoolctl import threadpool_info

        archs = sorted({str(i.get("architecture")) for i in threadpool_info() if i.get("internal_api") == "openblas"})
        out["openblas"] = ",".join(archs) or "none"
    except ImportError:  # threadpoolctl is a dependency; without it nothing is reported
        out["openblas"] = "unknown"
    try:
        import torch

        out["torch"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:
        out["torch"] = "none"
    return out


def check() -> list[str]:
    """Differences between :func:`effective` and what the level promises (empty when the pin holds)."""
    name = os.environ.get(ENV_VAR, DEFAULT_LEVEL)
    want = EXPECTED.get(name, {})
    got = effective()
    return [f"{lib}: expected {value}, got {got.get(lib)}" for lib, value in want.items() if got.get(lib) != value]

"""The generation side of the ``generate`` builder: requests, retries and the picklable executor task.

:func:`generate_chunk` runs on the executor (a worker process for the
:data:`PROCESS_SAFE_GENERATORS`, else the parent): it generates whole batches of
requests, regenerates NaN/silent outputs with the next seeds
(:func:`generate_with_retries`) and FLAC-encodes them at the planned length.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from mgdata.audio import encode_flac, rms_db
from mgdata.errors import InputError
from mgdata.generate.base import Generator, GenRequest
from mgdata.generate.config import GenerateConfig
from mgdata.generate.policy import PlanItem

#: Generators cheap to pickle and safe to run in worker processes; others (torch models:
#: ``musicgen``) run in the parent, since a model copy per worker would multiply memory
#: and torch intra-op threads do not survive fork reliably.
PROCESS_SAFE_GENERATORS = frozenset({"resynth", "compose"})
#: Samples per executor task (whole batches): amortises pickling; the output never depends on it.
CHUNK_SAMPLES = 16


@dataclass(frozen=True)
class GenJob:
    """What a worker needs to generate and encode batches (picklable)."""

    generator: Any
    max_retries: int
    silence_db: float
    n_out: int


def generate_chunk(task: tuple[GenJob, list[list[GenRequest]]]) -> list[list[tuple]]:
    """Executor task: generate (with retries) and FLAC-encode batches of requests.

    Returns:
        Per batch, per request: ``(flac bytes or None, seed used, retries, last problem)``.
    """
    job, batches = task
    gen = job.generator
    out = []
    for reqs in batches:
        results = generate_with_retries(gen, reqs, max_retries=job.max_retries, silence_db=job.silence_db)
        out.append(
            [
                (None if y is None else encode_flac(fix_length(y, job.n_out), gen.sample_rate), seed, n, problem)
                for y, seed, n, problem in results
            ]
        )
    return out


def clip_seconds(generator: Generator, cfg: GenerateConfig) -> float | None:
    """Clip length drawn per sample: ``sample_s`` (source), ``prime_seconds`` (primed), ``None`` (text)."""
    if generator.mode == "source":
        return cfg.sample_s
    if generator.mode == "primed":
        return float(getattr(cfg.section(generator.name), "prime_seconds", cfg.sample_s))
    return None


def make_request(
    item: PlanItem,
    seed: int,
    mode: str,
    sample_s: float,
    clip: tuple[np.ndarray, int] | None,
    prompt: str | None = None,
) -> GenRequest:
    """The GenRequest of a plan item (source or prime audio attached by mode)."""
    audio, sr = clip if clip is not None else (None, None)
    if mode == "source":
        return GenRequest(item.key, item.label, seed, sample_s, prompt=prompt, source=audio, source_sample_rate=sr)
    if mode == "primed":
        return GenRequest(item.key, item.label, seed, sample_s, prompt=prompt, prime=audio, prime_sample_rate=sr)
    return GenRequest(item.key, item.label, seed, sample_s, prompt=prompt)


def output_problem(y: np.ndarray, silence_db: float) -> str | None:
    """Why an output is unusable (``"nan"``, ``"silent"``, ``"empty"``), or ``None`` if it is fine."""
    y = np.asarray(y)
    if y.size == 0:
        return "empty"
    if not np.all(np.isfinite(y)):
        return "nan"
    if rms_db(y) < silence_db:
        return "silent"
    return None


def fix_length(y: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad a mono output to exactly ``n`` samples (float32)."""
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def with_prompt(generator: Generator, request: GenRequest) -> GenRequest:
    """The request with its text prompt filled in, when the generator exposes ``prompt_for(request)``.

    The builder fixes the prompt before generating so that the prompt recorded in
    provenance is exactly the one used (also on retries with another seed).
    """
    fn = getattr(generator, "prompt_for", None)
    if not callable(fn) or generator.mode == "source":
        return request
    return dataclasses.replace(request, prompt=fn(request))


def generate_with_retries(
    generator: Generator, requests: list[GenRequest], *, max_retries: int, silence_db: float
) -> list[tuple[np.ndarray | None, int, int, str | None]]:
    """Generate a batch; redo NaN/silent outputs one by one with ``seed + 1 ... + max_retries``.

    Returns:
        Per request: ``(audio or None, seed used, retries, last problem)``.
    """
    outs = generator.generate(requests)
    if len(outs) != len(requests):
        raise InputError(generator.name, f"generator returned {len(outs)} outputs for {len(requests)} requests")
    results = []
    for req, y in zip(requests, outs):
        problem = output_problem(y, silence_db)
        attempt = 0
        while problem is not None and attempt < max_retries:
            attempt += 1
            retry = dataclasses.replace(req, seed=req.seed + attempt)
            y = generator.generate([retry])[0]
            problem = output_problem(y, silence_db)
        results.append((None if problem else y, req.seed + attempt, attempt, problem))
    return results


__all__ = [
    "CHUNK_SAMPLES",
    "PROCESS_SAFE_GENERATORS",
    "GenJob",
    "clip_seconds",
    "fix_length",
    "generate_chunk",
    "generate_with_retries",
    "make_request",
    "output_problem",
    "with_prompt",
]

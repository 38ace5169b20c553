"""Regeneration of one generated sample from its json alone (``mgdata generate regenerate``).

The json's provenance names the generator and its config, the seed, the prompt, the
source/prime clip and, for batched generation, the whole batch; on the same platform and
library versions the FLAC of the result equals the shard's bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.config import from_dict
from mgdata.errors import InputError
from mgdata.generate.base import Generator, get_generator
from mgdata.generate.config import GenerateConfig
from mgdata.generate.inputs import load_clips
from mgdata.generate.policy import ClipRef, PlanItem
from mgdata.generate.worker import fix_length, make_request
from mgdata.store import iter_samples

log = logging.getLogger("mgdata")


def find_sample(artifact_dir: str | Path, key: str) -> dict[str, Any]:
    """The members of sample ``key`` in an artifact (``{"__key__", "flac", "json", ...}``).

    Raises:
        InputError: No such key (names the artifact).
    """
    for s in iter_samples(artifact_dir):
        if s["__key__"] == key:
            return s
    raise InputError(str(artifact_dir), f"no sample with key {key!r}")


def regenerate(meta: dict[str, Any], corpus_mix_dir: str | Path | None = None) -> tuple[np.ndarray, int]:
    """Regenerate one sample from its ``json`` member alone (plus the corpus for sources/primes).

    The generator is rebuilt from ``provenance.generator_config``, the request
    from the recorded label, seed (the one that produced the sample), prompt and
    source/prime key + offset; the result is cut to the recorded length. When
    the sample came from a batch with other members (``provenance.batch``), the
    whole batch is regenerated, because batched kernels differ from single ones
    in the last bits. On the same platform and library versions the FLAC
    encoding of the result equals the shard's bytes.

    Args:
        meta: The decoded ``json`` member.
        corpus_mix_dir: Corpus mix artifact holding the source/prime track.

    Returns:
        ``(audio, sample_rate)``.

    Raises:
        InputError: The json lacks provenance, or the source track is missing.
    """
    prov = meta.get("provenance") or {}
    for k in ("generator", "generator_config", "seed", "policy"):
        if k not in prov:
            raise InputError(str(meta.get("key", "json")), f"provenance has no {k!r}: not a generate sample")
    gen = _generator_of(prov, meta.get("key"))
    sample_s = float(prov["policy"]["sample_s"])
    members = _members_of(meta, prov)
    needed = [it.clip for it, _, _ in members if it.clip is not None]
    if needed and corpus_mix_dir is None:
        raise InputError(str(meta.get("key")), "needs the corpus mix artifact for its source/prime clip")
    clips = load_clips(corpus_mix_dir, needed) if needed else {}
    reqs = [
        make_request(
            it, seed, gen.mode, sample_s, clips.get((it.clip.track_id, it.clip.offset_s)) if it.clip else None, prompt
        )
        for it, seed, prompt in members
    ]
    pos = [it.key for it, _, _ in members].index(meta["key"])
    y = gen.generate(reqs)[pos]
    return fix_length(y, int(round(sample_s * gen.sample_rate))), gen.sample_rate


def _generator_of(prov: dict[str, Any], key: Any) -> Generator:
    """The generator rebuilt from ``provenance.generator_config`` (a warning if its description changed)."""
    name = prov["generator"]
    default_section = GenerateConfig().section(name)
    section = (
        from_dict(type(default_section), prov["generator_config"], f"generate.{name}")
        if default_section is not None and prov["generator_config"] is not None
        else None
    )
    gen = get_generator(name, section)
    if gen.describe() != prov.get("settings"):
        log.warning(
            "regenerate %s: generator description differs from the recorded one "
            "(library or algorithm version changed?); output may differ",
            key,
        )
    return gen


def _members_of(meta: dict[str, Any], prov: dict[str, Any]) -> list[tuple[PlanItem, int, str | None]]:
    """``(item, seed, prompt)`` of every request of the sample's batch (the sample alone if unbatched)."""
    if prov.get("batch"):
        return [
            (
                PlanItem(
                    b["key"],
                    b["label"],
                    int(b.get("index", 0)),
                    ClipRef.from_dict(b["clip"]) if b.get("clip") else None,
                ),
                int(b["seed"]),
                b.get("prompt"),
            )
            for b in prov["batch"]
        ]
    clip_info = prov.get("source") or prov.get("prime")
    item_clip = (
        None
        if clip_info is None
        else ClipRef(
            clip_info["key"],
            meta["label"],
            float(clip_info["offset_s"]),
            float(clip_info["duration_s"]),
            int(clip_info.get("reuse_round", 0)),
        )
    )
    return [
        (
            PlanItem(meta["key"], meta["label"], int(meta.get("index", 0)), item_clip),
            int(prov["seed"]),
            prov.get("prompt"),
        )
    ]


__all__ = ["find_sample", "regenerate"]

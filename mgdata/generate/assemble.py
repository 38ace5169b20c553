"""Record assembly of the ``generate`` builder: the json of one generated sample, with its provenance.

A sample's json (:class:`~mgdata.generate.records.GeneratedRecord`) carries its class,
the label fields of its source track (copied, never recomputed: :mod:`mgdata.labels`),
the seed that produced it and everything ``regenerate`` needs to rebuild it.
"""

from __future__ import annotations

from typing import Any

import mgdata
from mgdata.config import to_dict
from mgdata.generate.base import Generator
from mgdata.generate.config import GenerateConfig
from mgdata.generate.policy import PlanItem
from mgdata.generate.records import SPLIT, GeneratedProvenance, GeneratedRecord
from mgdata.labels.fields import TrackLabels
from mgdata.provenance import Provenance

# Licence notes of generators whose weights carry their own terms (added to every sample's licence).
MODEL_LICENCES = {
    "musicgen": "generated with MusicGen: the model weights' licence applies "
    "(facebook/musicgen-* weights: CC-BY-NC 4.0)"
}


def licence(source_licence: str | None, model_licence: str | None) -> str:
    """Licence of a generated sample: its source's, plus the model weights' terms when there are any."""
    parts = [p for p in (source_licence, model_licence) if p]
    return "; ".join(dict.fromkeys(parts)) or "see the source artifact"


def policy_dict(cfg: GenerateConfig, name: str) -> dict[str, Any]:
    """The budget policy settings of generator ``name`` (fingerprinted and recorded in every sample).

    ``fraction`` is the one the budget used (a generator's own ``fraction`` if its section sets one).
    """
    return {
        "fraction": cfg.fraction_for(name),
        "sample_s": cfg.sample_s,
        "seed": cfg.seed,
        "label_column": cfg.label_column,
        "on_shortage": cfg.on_shortage,
        "max_retries": cfg.retries_for(name),
        "silence_db": cfg.silence_db,
    }


def sample_json(
    *,
    item: PlanItem,
    seed: int,
    base_seed: int,
    retries: int,
    prompt: str | None,
    generator: Generator,
    described: dict,
    cfg: GenerateConfig,
    params_hash: str,
    prov: Provenance,
    source_licence: str,
    n_samples: int,
    batch: list[dict[str, Any]] | None = None,
    label_fields: dict[str, Any] | None = None,
) -> GeneratedRecord:
    """The ``json`` member of a generated sample (label, split, source labels and full provenance).

    ``batch`` lists the requests (key, label, seed, prompt, clip) of the batch the
    sample came from when that batch had other members, so ``regenerate`` can
    rebuild the exact batch (batched kernels differ from single ones in the last bits).
    ``label_fields`` are the source track's (:func:`sample_label_fields`).
    """
    clip = None
    if item.clip is not None:
        clip = {
            "key": item.clip.track_id,
            "offset_s": item.clip.offset_s,
            "duration_s": item.clip.duration_s,
            "reuse_round": item.clip.reuse_round,
            "split": SPLIT,
        }
    base = prov.sample_dict()
    provenance = GeneratedProvenance(
        builder=base["builder"],
        source_version=base["source_version"],
        licence=source_licence,
        seed=seed,
        params_hash=base["params_hash"],
        mgdata_version=base["mgdata_version"],
        params_seed=cfg.seed,
        base_seed=base_seed,
        retries=retries,
        generator=generator.name,
        mode=generator.mode,
        model=described.get("model"),
        revision=described.get("revision"),
        model_hash=described.get("local_path_hash", described.get("model_hash")),
        settings=described,
        generator_config=to_dict(cfg.section(generator.name)),
        policy=policy_dict(cfg, generator.name),
        label=item.label,
        prompt=prompt,
        source=clip if generator.mode == "source" else None,
        prime=clip if generator.mode == "primed" else None,
        batch=batch,
    )
    labels = {k: v for k, v in (label_fields or {}).items() if k != "split"}
    return GeneratedRecord(
        key=item.key,
        label=item.label,
        index=item.index,
        split=SPLIT,
        generator=generator.name,
        sample_rate=generator.sample_rate,
        duration_s=n_samples / generator.sample_rate,
        seed=seed,
        prompt=prompt,
        source_key=item.clip.track_id if item.clip is not None else None,
        offset_s=item.clip.offset_s if item.clip is not None else None,
        params_hash=params_hash,
        mgdata_version=mgdata.__version__,
        provenance=provenance.to_dict(),
        **labels,
    )


def sample_label_fields(
    item: PlanItem,
    track_labels: dict[str, dict[str, Any]],
    label_column: str,
    generated: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Top-level label fields of a generated sample: those of its source track.

    Text-mode samples have no source track: the fields the generator reports of its own output (``generated``,
    e.g. compose's style and moods), else only the quadrant, when the budget's class column is the quadrant.
    ``split`` is the sample's (``train``, as its source's).
    """
    src = track_labels.get(item.clip.track_id) if item.clip is not None else None
    fields = dict(src) if src else {**TrackLabels().to_dict(), **(generated or {}), "track_id": None}
    if fields.get("quadrant") is None and label_column == "quadrant":
        fields["quadrant"] = item.label
    if fields.get("track_id") is None and item.clip is not None:
        fields["track_id"] = item.clip.track_id
    fields["split"] = SPLIT
    return fields


__all__ = ["MODEL_LICENCES", "licence", "policy_dict", "sample_json", "sample_label_fields"]

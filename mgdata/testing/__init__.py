"""Test helpers: audio synthesized in code and tiny artifacts in the real layouts.

Used by the test-suite and benchmarks so that committed fixtures stay tiny.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig
from mgdata.provenance import Provenance
from mgdata.splits import assign_splits
from mgdata.store import ArtifactWriter, Sample, encode_json, fingerprint

TEST_LICENCE = "synthetic test audio (CC0)"


def tone(freqs: float | Sequence[float], duration_s: float, sr: int, amp: float = 0.3) -> np.ndarray:
    """Sum of sines (equal amplitude, total peak ``amp``) as float32 ``[n]``."""
    freqs = [freqs] if np.isscalar(freqs) else list(freqs)
    t = np.arange(int(round(duration_s * sr))) / sr
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs) / max(len(freqs), 1)
    return (amp * x).astype(np.float32)


def noise(duration_s: float, sr: int, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    """Seeded white noise, float32 ``[n]``."""
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(round(duration_s * sr)))).astype(np.float32)


STEM_NAMES = ("soprano", "alto", "tenor", "bass", "violin", "viola")
MOOD_TAGS = (("happy", "uplifting"), ("calm", "relaxing"), ("dark", "dramatic"), ("sad", "melancholic"))


def make_corpus_artifact(
    out_dir: str | Path,
    *,
    n_tracks: int = 6,
    n_stems: int = 3,
    duration_s: float = 6.0,
    sr: int = 16000,
    seed: int = 0,
    shards: ShardConfig | None = None,
) -> Path:
    """Write a small artifact in the exact chorale-corpus layout (see README.md, "Artifact formats").

    Each stem is a tone at a track- and stem-specific pitch with a slow amplitude
    envelope; the mix is their sum. Writes ``mix/``, ``stems/`` and ``manifest.parquet``.

    Returns:
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    shards = shards or ShardConfig(max_samples=4)
    rng = np.random.default_rng(seed)
    track_ids = [f"synth-{i:03d}" for i in range(n_tracks)]
    splits = assign_splits(track_ids, seed=seed)
    fp = fingerprint("testing-corpus", n_tracks, n_stems, duration_s, sr, seed, shards)
    prov = Provenance(
        builder="testing",
        source="mgdata.testing",
        source_version="1",
        licence=TEST_LICENCE,
        seed=seed,
        params_hash=fp,
    )
    rows = []
    with (
        ArtifactWriter(out_dir / "mix", fingerprint=fp, provenance=prov, shards=shards) as mix_w,
        ArtifactWriter(out_dir / "stems", fingerprint=fp, provenance=prov, shards=shards) as stem_w,
    ):
        for i, track_id in enumerate(track_ids):
            split = splits[track_id]
            stems = _synth_stems(rng, n_stems, duration_s, sr)
            mix = np.sum(stems, axis=0).astype(np.float32)
            meta = _mix_json(i, track_id, split, n_stems, duration_s, sr, prov)
            mix_w.write(
                split,
                Sample(
                    track_id,
                    {"flac": encode_flac(mix, sr), "json": encode_json(meta)},
                    seconds=duration_s,
                    labels=tuple(meta["tags"]),
                ),
            )
            for s, stem in enumerate(stems):
                smeta = _stem_json(track_id, s, split, duration_s, sr, prov)
                stem_w.write(
                    split,
                    Sample(
                        f"{track_id}_s{s:02d}",
                        {"flac": encode_flac(stem, sr), "json": encode_json(smeta)},
                        seconds=duration_s,
                    ),
                )
            rows.append({k: meta[k] for k in _MANIFEST_COLUMNS} | {"n_stems": n_stems})
    pl.DataFrame(rows).write_parquet(out_dir / "manifest.parquet")
    return out_dir


_MANIFEST_COLUMNS = (
    "track_id",
    "score_id",
    "composer",
    "style",
    "title",
    "split",
    "tags",
    "mood_tags",
    "key",
    "mode",
    "tempo_bpm",
    "duration_s",
    "sample_rate",
    "parts",
    "instruments",
)


def _synth_stems(rng: np.random.Generator, n_stems: int, duration_s: float, sr: int) -> list[np.ndarray]:
    """The stems of one synthetic track: harmonic tones on a random base pitch with slow envelopes."""
    base = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    stems = []
    for s in range(n_stems):
        env = 0.6 + 0.4 * np.sin(2 * np.pi * (0.2 + 0.1 * s) * np.arange(int(duration_s * sr)) / sr)
        stems.append(tone([base * (s + 1), base * (s + 1) * 2.01], duration_s, sr, 0.25 / n_stems) * env)
    return stems


def _mix_json(
    i: int, track_id: str, split: str, n_stems: int, duration_s: float, sr: int, prov: Provenance
) -> dict[str, Any]:
    """The mix json of synthetic track ``i`` (the corpus layout, without the drawn label fields)."""
    moods = list(MOOD_TAGS[i % len(MOOD_TAGS)])
    return {
        "track_id": track_id,
        "score_id": f"synth/{i}",
        "composer": "synth",
        "style": "synthetic",
        "title": track_id,
        "split": split,
        "tags": ["synthetic", *moods],
        "mood_tags": moods,
        "key": "C major" if i % 2 == 0 else "a minor",
        "mode": "major" if i % 2 == 0 else "minor",
        "tempo_bpm": 100.0,
        "duration_s": duration_s,
        "sample_rate": sr,
        "parts": list(STEM_NAMES[:n_stems]),
        "instruments": ["Acoustic Grand Piano"] * n_stems,
        "programs": [0] * n_stems,
        "provenance": prov.sample_dict(),
    }


def _stem_json(track_id: str, s: int, split: str, duration_s: float, sr: int, prov: Provenance) -> dict[str, Any]:
    """The json of stem ``s`` of a synthetic track (the corpus layout, without label fields)."""
    return {
        "track_id": track_id,
        "stem_index": s,
        "stem": STEM_NAMES[s],
        "instrument": "Acoustic Grand Piano",
        "program": 0,
        "split": split,
        "sample_rate": sr,
        "duration_s": duration_s,
        "provenance": prov.sample_dict(),
    }

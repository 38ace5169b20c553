"""Params section ``stems``: the stem-pair windows stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mgdata.config import check

# Unpitched or non-musical material: MoisesDB stem types, then the General MIDI pitched-percussion-less programs
# (timpani and programs 112-119) as pretty_midi names them, matched against the stem and its instrument.
DEFAULT_EXCLUDE = [
    "drums",
    "percussion",
    "effects",
    "fx",
    "timpani",
    "tinkle_bell",
    "agogo",
    "steel_drums",
    "woodblock",
    "taiko_drum",
    "melodic_tom",
    "synth_drum",
    "reverse_cymbal",
]


def _default_fractions() -> dict[str, float]:
    return {"train": 0.8, "validation": 0.1, "test": 0.1}


@dataclass(frozen=True)
class StemsConfig:
    """Section ``stems`` of params.yaml.

    Attributes:
        source: Multitrack input: ``"corpus"`` (data/corpus/stems) or ``"moisesdb"``.
        moisesdb_root: MoisesDB download folder (required when ``source == "moisesdb"``).
        sample_rate: Rate (Hz) every track is resampled to before windowing.
        window_s: Window length in seconds.
        overlap_s: Overlap between consecutive windows in seconds (hop = window - overlap).
        keep_partial: Keep the last window that runs past the end, zero-padded
            (``False``: drop it). A track shorter than one window never yields a window.
        exclude_stems: Stem types never paired (case-insensitive, spaces = underscores).
        silence_db: A stem whose RMS in a window is below this (dBFS) is dropped for that window.
        split_fractions: Split name -> share of tracks, when splits are assigned here.
        keep_source_split: Reuse the split a source already gives a track (the corpus
            does), so a track is in the same split in every artifact; tracks without
            one (MoisesDB) are split here with ``split_fractions`` and ``seed``.
        length_tolerance_s: Stems of one track whose lengths differ by at most this
            are trimmed to the shortest; a larger mismatch skips the track.
        max_tracks: Use only the first N tracks in id order (0 = all), for quick runs.
        seed: Split seed.
        fail_on_error: Raise on the first bad track instead of skipping and counting it.
        duplicate_corr: A pair whose two stem-windows have a mean frame-wise chroma
            correlation above this is a near-duplicate (one part doubling the other)
            and is dropped (both directions), counted in metrics; 1.0 keeps all.
        materialize_pairs: Also write self-contained (a.flac, b.flac, json) pair
            shards to the sub-artifact ``<out_dir>/pairs``.
    """

    source: Literal["corpus", "moisesdb"] = "corpus"
    moisesdb_root: str = ""
    sample_rate: int = 22050
    window_s: float = 15.0
    overlap_s: float = 5.0
    keep_partial: bool = False
    exclude_stems: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    silence_db: float = -50.0
    split_fractions: dict[str, float] = field(default_factory=_default_fractions)
    keep_source_split: bool = True
    length_tolerance_s: float = 0.05
    max_tracks: int = 0
    seed: int = 0
    fail_on_error: bool = False
    duplicate_corr: float = 0.95
    materialize_pairs: bool = False

    def __post_init__(self) -> None:
        check(self.sample_rate >= 1000, "sample_rate", "expected a sample rate >= 1000 Hz")
        check(self.window_s > 0, "window_s", "expected a window length > 0 s")
        check(0 <= self.overlap_s < self.window_s, "overlap_s", "expected 0 <= overlap_s < window_s")
        check(self.silence_db <= 0, "silence_db", "expected a level in dBFS <= 0")
        check(self.length_tolerance_s >= 0, "length_tolerance_s", "expected >= 0 s")
        check(-1.0 <= self.duplicate_corr <= 1.0, "duplicate_corr", "expected a correlation in [-1, 1]")
        check(self.max_tracks >= 0, "max_tracks", "expected >= 0 (0 = all tracks)")
        check(
            bool(self.split_fractions)
            and all(v >= 0 for v in self.split_fractions.values())
            and sum(self.split_fractions.values()) > 0,
            "split_fractions",
            "expected a mapping split -> share >= 0 with a positive sum",
        )
        check(
            all(isinstance(s, str) and s.strip() for s in self.exclude_stems),
            "exclude_stems",
            "expected a list of non-empty stem type names",
        )
        check(
            self.source != "moisesdb" or bool(self.moisesdb_root.strip()),
            "moisesdb_root",
            "expected the MoisesDB download folder when source is 'moisesdb'",
        )

    @property
    def hop_s(self) -> float:
        """Seconds between window starts."""
        return self.window_s - self.overlap_s

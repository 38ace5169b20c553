"""MoisesDB reader: data.json parsing, per-type summing, resampling, bad input, end-to-end pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgdata.audio import decode_audio, resample
from mgdata.config import ShardConfig
from mgdata.errors import InputError
from mgdata.report import StageReport
from mgdata.sources.moisesdb import (
    LICENCE,
    iter_moisesdb_tracks,
    list_moisesdb_tracks,
    load_moisesdb_track,
    moisesdb_source_info,
    read_moisesdb_info,
)
from mgdata.sources.multitrack import TrackError
from mgdata.stems.build import build_stems_stage
from mgdata.stems.config import StemsConfig
from mgdata.stems.records import read_pairs
from mgdata.store import decode_json, iter_samples, read_artifact_info
from mgdata.testing import noise, tone

SR_FILE = 44100
SR = 22050
DUR_S = 2.0


def write_track(
    root: Path,
    track_id: str,
    stems: dict[str, list[tuple[str, np.ndarray]]],
    *,
    sr: int = SR_FILE,
    song: str = "Song",
) -> Path:
    """One MoisesDB track folder: data.json + <stemName>/<id>.wav per recorded track.

    ``stems``: stemName -> [(trackType, audio [n] or [n, 2]), ...].
    """
    track_dir = root / track_id
    entries = []
    for s_i, (name, tracks) in enumerate(stems.items()):
        (track_dir / name).mkdir(parents=True, exist_ok=True)
        items = []
        for t_i, (track_type, audio) in enumerate(tracks):
            tid = f"{track_id[:4]}-{s_i}-{t_i}"
            sf.write(track_dir / name / f"{tid}.wav", audio, sr, subtype="FLOAT")
            items.append({"id": tid, "trackType": track_type, "extension": "wav", "has_bleed": False})
        entries.append({"stemName": name, "id": f"stem-{s_i}", "tracks": items})
    (track_dir / "data.json").write_text(
        json.dumps({"song": song, "artist": "Artist", "genre": "Pop", "stems": entries})
    )
    return track_dir


def simple_stems(seed: int = 0, dur_s: float = DUR_S) -> dict[str, list[tuple[str, np.ndarray]]]:
    base = 220.0 * (1 + 0.05 * seed)
    return {
        "vocals": [("lead_female_singer", tone(base * 2, dur_s, SR_FILE, 0.2))],
        "bass": [("bass_guitar", tone(base / 2, dur_s, SR_FILE, 0.2))],
        "drums": [("kick_drum", noise(dur_s, SR_FILE, 0.1, seed))],
        "guitar": [("acoustic_guitar", tone(base * 1.5, dur_s, SR_FILE, 0.2))],
    }


def test_reads_data_json_and_sums_tracks_of_one_type(tmp_path):
    a = tone(440.0, DUR_S, SR_FILE, 0.2)
    b = tone(660.0, DUR_S, SR_FILE, 0.2)
    stereo = np.stack([tone(330.0, DUR_S, SR_FILE, 0.2), np.zeros(int(DUR_S * SR_FILE), np.float32)], axis=1)
    write_track(
        tmp_path / "moisesdb_v0.1",
        "0a1b2c3d-uuid",
        {"vocals": [("lead_male_singer", a), ("background_vocals", b)], "bass": [("bass_guitar", stereo)]},
        song="Hello",
    )
    (track_dir,) = list_moisesdb_tracks(tmp_path)  # root with a provider folder
    info = read_moisesdb_info(track_dir, tmp_path)
    assert (info.track_id, info.song, info.artist, info.genre, info.provider) == (
        "0a1b2c3d-uuid",
        "Hello",
        "Artist",
        "Pop",
        "moisesdb_v0.1",
    )
    assert [s.name for s in info.stems] == ["vocals", "bass"]
    assert info.stems[0].files[1] == track_dir / "vocals" / "0a1b-0-1.wav"
    assert info.stems[0].instrument == "background_vocals+lead_male_singer"
    assert type(info).from_dict(info.to_dict()) == info

    track = load_moisesdb_track(info, sample_rate=SR)
    assert track.sample_rate == SR and track.n_samples == int(DUR_S * SR)
    expected = resample(a, SR_FILE, SR) + resample(b, SR_FILE, SR)
    np.testing.assert_allclose(track.stems["vocals"], expected, atol=1e-5)
    # Stereo is averaged to mono: 330 Hz tone at half amplitude.
    np.testing.assert_allclose(track.stems["bass"], 0.5 * resample(stereo[:, 0], SR_FILE, SR), atol=1e-5)
    assert track.instruments["bass"] == "bass_guitar"
    assert track.source == "moisesdb" and track.licence == LICENCE and track.split is None
    assert track.meta["song"] == "Hello"


def test_resampling_keeps_pitch(tmp_path):
    write_track(
        tmp_path,
        "t1",
        {
            "piano": [("grand_piano", tone(1000.0, 1.0, SR_FILE, 0.3))],
            "bass": [("bass_guitar", tone(100.0, 1.0, SR_FILE, 0.3))],
        },
    )
    (track,) = list(iter_moisesdb_tracks(tmp_path, sample_rate=16000, report=StageReport("t")))
    x = track.stems["piano"]
    assert track.sample_rate == 16000 and x.shape == (16000,)
    peak_hz = np.argmax(np.abs(np.fft.rfft(x))) * 16000 / x.shape[0]
    assert abs(peak_hz - 1000.0) <= 1.0


def test_merges_duplicate_stem_entries(tmp_path):
    track_dir = write_track(tmp_path, "t1", {"guitar": [("acoustic_guitar", tone(300.0, 1.0, SR_FILE))]})
    meta = json.loads((track_dir / "data.json").read_text())
    extra = dict(
        meta["stems"][0],
        id="stem-dup",
        tracks=[{"id": "dup", "trackType": "clean_electric_guitar", "extension": "wav"}],
    )
    sf.write(track_dir / "guitar" / "dup.wav", tone(500.0, 1.0, SR_FILE), SR_FILE)
    meta["stems"].append(extra)
    (track_dir / "data.json").write_text(json.dumps(meta))
    info = read_moisesdb_info(track_dir)
    assert len(info.stems) == 1 and len(info.stems[0].files) == 2


def _skips(report: StageReport) -> list[dict[str, str]]:
    return report.to_dict()["skipped_items"]


@pytest.mark.parametrize("case", ["missing", "unreadable", "short", "bad_json"])
def test_bad_track_is_skipped_and_named(tmp_path, case):
    write_track(tmp_path, "a-good", simple_stems(0))
    bad = write_track(tmp_path, "b-bad", simple_stems(1))
    target = bad / "bass" / "b-ba-1-0.wav"
    if case == "missing":
        target.unlink()
    elif case == "unreadable":
        target.write_bytes(b"RIFF....not really a wav file")
    elif case == "short":
        sf.write(target, tone(110.0, DUR_S - 0.5, SR_FILE), SR_FILE)
    else:
        (bad / "data.json").write_text("{not json")
    report = StageReport("stems")
    tracks = list(iter_moisesdb_tracks(tmp_path, sample_rate=SR, report=report))
    assert [t.track_id for t in tracks] == ["a-good"]
    (skip,) = _skips(report)
    assert skip["item"] == "b-bad"
    expected = {
        "missing": "missing audio file",
        "unreadable": "unreadable audio",
        "short": "stem length mismatch",
        "bad_json": "bad metadata",
    }[case]
    assert skip["reason"].startswith(expected)
    named = bad / "data.json" if case == "bad_json" else target
    assert str(named) in skip["reason"]
    assert report.counts["tracks_skipped"] == 1

    with pytest.raises(TrackError) as exc:
        list(iter_moisesdb_tracks(tmp_path, sample_rate=SR, fail_on_error=True))
    assert str(named) in str(exc.value)


def test_length_within_tolerance_is_trimmed(tmp_path):
    stems = simple_stems(0)
    stems["bass"] = [("bass_guitar", tone(110.0, DUR_S - 0.01, SR_FILE))]
    write_track(tmp_path, "t1", stems)
    (track,) = iter_moisesdb_tracks(tmp_path, sample_rate=SR, length_tolerance_s=0.05, report=StageReport("t"))
    assert track.n_samples == int(round((DUR_S - 0.01) * SR))
    report = StageReport("t")
    assert list(iter_moisesdb_tracks(tmp_path, sample_rate=SR, length_tolerance_s=0.0, report=report)) == []
    assert report.counts["tracks_skipped"] == 1


def test_missing_root_and_empty_root(tmp_path):
    with pytest.raises(InputError, match="not found"):
        list_moisesdb_tracks(tmp_path / "nope")
    with pytest.raises(InputError, match="no MoisesDB track folders"):
        list_moisesdb_tracks(tmp_path)


def test_source_fingerprint_tracks_data_changes(tmp_path):
    track_dir = write_track(tmp_path, "t1", simple_stems(0))
    first = moisesdb_source_info(tmp_path)
    assert first["licence"] == LICENCE and first["tracks"] == 1
    assert moisesdb_source_info(tmp_path)["fingerprint"] == first["fingerprint"]
    sf.write(track_dir / "bass" / "t1-1-0.wav", tone(110.0, DUR_S + 1, SR_FILE), SR_FILE)
    assert moisesdb_source_info(tmp_path)["fingerprint"] != first["fingerprint"]


def test_stage_builds_pairs_from_moisesdb(tmp_path):
    root = tmp_path / "moisesdb"
    for i in range(10):
        write_track(root, f"{i:02d}-track", simple_stems(i))
    # The synthetic stems sit octaves apart (pitch classes coincide): keep every pair, as real stems would be.
    cfg = StemsConfig(
        source="moisesdb", moisesdb_root=str(root), window_s=1.0, overlap_s=0.5, sample_rate=SR, duplicate_corr=1.0
    )
    report = StageReport("stems")
    out = tmp_path / "stems"
    result = build_stems_stage(cfg, ShardConfig(max_samples=16), out_dir=out, report=report, progress=False)
    # 2 s tracks, 1 s windows, 0.5 s hop -> 3 windows; drums excluded -> 3 stems -> 6 pairs per window.
    assert result.tracks_used == 10 and result.windows == 30 and result.n_pairs == 180
    assert result.excluded_stems == {"drums": 10}
    assert result.pairs_per_split == {"train": 144, "validation": 18, "test": 18}
    info = read_artifact_info(out)
    assert info["provenance"]["source"] == "moisesdb" and info["provenance"]["licence"] == LICENCE
    samples = list(iter_samples(out))
    assert len(samples) == 90  # each stem-window stored once
    assert len(read_pairs(out)) == 180
    meta = decode_json(samples[0]["json"])
    assert meta["source"] == "moisesdb" and meta["provenance"]["licence"] == LICENCE
    assert meta["stem"] != "drums"
    assert meta["instrument"] in {"lead_female_singer", "bass_guitar", "acoustic_guitar"}
    a, sr = decode_audio(samples[0]["flac"])
    assert sr == SR and a.shape == (SR,)

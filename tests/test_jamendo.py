"""Tests of the MTG-Jamendo source: TSV reader, records, config, clip extraction from MP3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgdata.config import from_dict
from mgdata.errors import InputError, ParamsError
from mgdata.report import StageReport
from mgdata.sources.jamendo import (
    MOODTHEME_TAGS,
    JamendoConfig,
    JamendoTrack,
    clip_bounds,
    iter_clips,
    load_clip,
    read_split,
    read_tsv,
    split_files,
    split_from_filename,
    split_tag,
)
from mgdata.testing import tone

FIXTURE = Path(__file__).parent / "fixtures" / "jamendo"
HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"


def _write_tsv(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- metadata


def test_split_tag_keeps_category_and_reads_bare_tags_as_moodtheme():
    assert split_tag("mood/theme---happy") == ("mood/theme", "happy")
    assert split_tag("genre---rock") == ("genre", "rock")
    assert split_tag("instrument---piano") == ("instrument", "piano")
    assert split_tag("happy") == ("mood/theme", "happy")
    with pytest.raises(ValueError):
        split_tag("genre---")


def test_vocabulary_has_the_59_moodtheme_tags():
    assert len(MOODTHEME_TAGS) == 59  # as in mood_theme_stats.tsv and the split files
    assert {"happy", "sad", "calm", "dark", "melancholic", "uplifting"} <= MOODTHEME_TAGS


def test_read_tsv_on_committed_slice():
    path = split_files(FIXTURE)["train"]
    tracks = read_tsv(path)
    assert len(tracks) == 28
    assert all(t.split == "train" for t in tracks)  # inferred from the file name
    first = tracks[0]
    assert first.track_id.startswith("track_")
    assert first.artist_id.startswith("artist_") and first.album_id.startswith("album_")
    assert first.path.endswith(".mp3") and first.duration_s > 0
    # CRLF endings of the official files must not leak into the last tag.
    assert all(not tag.endswith("\r") for t in tracks for tag in t.tags)
    conflict = next(t for t in tracks if t.track_id == "track_0045570")
    assert conflict.tags == ("mood/theme---dark", "mood/theme---sad")
    assert conflict.tag_names == ("dark", "sad")
    assert conflict.duration_s == pytest.approx(75.3)


def test_read_split_reads_three_files_in_order():
    tracks = read_split(FIXTURE, split_index=0)
    assert len(tracks) == 84
    assert [t.split for t in tracks] == ["train"] * 28 + ["validation"] * 28 + ["test"] * 28
    assert len({t.track_id for t in tracks}) == 84


def test_read_split_missing_dir_names_it(tmp_path):
    with pytest.raises(InputError, match="split-3"):
        read_split(FIXTURE, split_index=3)


def test_variable_tag_columns_and_other_categories(tmp_path):
    path = _write_tsv(
        tmp_path / "autotagging-test.tsv",
        [
            "track_1\tartist_1\talbum_1\t01/1.mp3\t10.5\tgenre---rock\tinstrument---piano\tmood/theme---sad",
            "track_2\tartist_1\talbum_1\t02/2.mp3\t20\tmood/theme---happy",
        ],
    )
    tracks = read_tsv(path)
    assert tracks[0].tags == ("genre---rock", "instrument---piano", "mood/theme---sad")
    assert tracks[1].tags == ("mood/theme---happy",)
    assert tracks[0].split == "test" and split_from_filename("x.tsv") is None


@pytest.mark.parametrize(
    "row, reason",
    [
        ("track_2\tartist_1\talbum_1\t02/2.mp3\tabc\tmood/theme---happy", "DURATION is not a number"),
        ("track_2\tartist_1\talbum_1\t02/2.mp3\t12.0", "expected >= 6"),
        ("track_2\tartist_1\talbum_1\t02/2.mp3\t-3\tmood/theme---happy", "duration_s"),
        ("track_1\tartist_1\talbum_1\t02/2.mp3\t3\tmood/theme---happy", "repeats line 2"),
        ("track_2\tartist_1\talbum_1\t02/2.mp3\t3\tmood/theme---", "malformed tag"),
    ],
)
def test_malformed_row_error_names_file_and_line(tmp_path, row, reason):
    path = _write_tsv(tmp_path / "bad.tsv", ["track_1\tartist_1\talbum_1\t01/1.mp3\t10\tmood/theme---sad", row])
    with pytest.raises(InputError) as info:
        read_tsv(path)
    assert info.value.where == f"{path}:3"
    assert reason in str(info.value) and str(path) in str(info.value)


def test_malformed_row_skipped_and_counted_when_not_strict(tmp_path):
    path = _write_tsv(
        tmp_path / "bad.tsv",
        [
            "track_1\tartist_1\talbum_1\t01/1.mp3\t10\tmood/theme---sad",
            "track_2\tartist_1\talbum_1\t02/2.mp3\tnan-ish\tmood/theme---happy",
            "track_3\tartist_1\talbum_1\t03/3.mp3\t30\tmood/theme---calm",
        ],
    )
    report = StageReport("t")
    tracks = read_tsv(path, strict=False, report=report)
    assert [t.track_id for t in tracks] == ["track_1", "track_3"]
    assert report.skipped == [{"item": f"{path}:3", "reason": "malformed row: DURATION is not a number: 'nan-ish'"}]


def test_bad_header_is_reported(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("id,artist\n1,2\n")
    with pytest.raises(InputError, match="expected header"):
        read_tsv(path)


def test_track_in_two_splits_is_an_error(tmp_path):
    d = tmp_path / "splits" / "split-0"
    d.mkdir(parents=True)
    row = "track_1\tartist_1\talbum_1\t01/1.mp3\t10\tmood/theme---sad"
    for split in ("train", "validation", "test"):
        _write_tsv(d / f"autotagging_moodtheme-{split}.tsv", [row] if split != "validation" else [])
    with pytest.raises(InputError, match="track_1 is also in"):
        read_split(tmp_path)


def test_track_record_roundtrip_and_validation():
    t = JamendoTrack("track_1", "artist_1", "album_1", "01/1.mp3", 12, ["mood/theme---sad"], "train")
    assert t.tags == ("mood/theme---sad",) and isinstance(t.duration_s, float)
    assert JamendoTrack.from_dict(t.to_dict()) == t
    assert t.to_dict()["tags"] == ["mood/theme---sad"]
    with pytest.raises(ValueError, match="duration_s"):
        JamendoTrack("track_1", "artist_1", "album_1", "01/1.mp3", 0.0)
    with pytest.raises(ValueError, match="split"):
        JamendoTrack("track_1", "artist_1", "album_1", "01/1.mp3", 1.0, (), "dev")
    with pytest.raises(ValueError, match="track_id"):
        JamendoTrack(" ", "artist_1", "album_1", "01/1.mp3", 1.0)


def test_config_from_params():
    cfg = from_dict(JamendoConfig, {"clip_position": 12, "audio_root": "/x"}, "relabel.jamendo")
    assert cfg.clip_position == 12.0 and cfg.audio_root == "/x"
    assert from_dict(JamendoConfig, {}, "j").clip_position == "middle"
    with pytest.raises(ParamsError, match="relabel.jamendo.clip_position"):
        from_dict(JamendoConfig, {"clip_position": "end"}, "relabel.jamendo")
    with pytest.raises(ParamsError, match="relabel.jamendo.clip_s"):
        from_dict(JamendoConfig, {"clip_s": 0}, "relabel.jamendo")


# ---------------------------------------------------------------- audio


def test_clip_bounds():
    assert clip_bounds(100.0, clip_s=30.0, position="middle") == (35.0, 30.0)
    assert clip_bounds(100.0, clip_s=30.0, position="start") == (0.0, 30.0)
    assert clip_bounds(100.0, clip_s=30.0, position=80.0) == (80.0, 20.0)  # cut at the end
    assert clip_bounds(12.0, clip_s=30.0, position="middle") == (0.0, 12.0)  # short track: whole
    with pytest.raises(ValueError, match="outside"):
        clip_bounds(10.0, clip_s=5.0, position=10.0)
    with pytest.raises(ValueError, match="position"):
        clip_bounds(10.0, clip_s=5.0, position="end")


@pytest.fixture(scope="module")
def mp3_root(tmp_path_factory):
    """Audio root with one stereo 44.1 kHz MP3: 2 s at 440 Hz, 2 s at 880 Hz, 2 s at 1320 Hz."""
    root = tmp_path_factory.mktemp("jamendo_audio")
    (root / "48").mkdir()
    sr = 44100
    x = np.concatenate([tone(440, 2.0, sr), tone(880, 2.0, sr), tone(1320, 2.0, sr)])
    sf.write(root / "48" / "948.mp3", np.stack([x, 0.5 * x], axis=1), sr, format="MP3")
    return root


TRACK = JamendoTrack("track_0000948", "artist_000087", "album_000149", "48/948.mp3", 6.0, ("mood/theme---happy",))


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / sr)[spectrum.argmax()])


@pytest.mark.parametrize(
    "position, offset_s, peak_hz", [("middle", 2.0, 880.0), ("start", 0.0, 440.0), (4.0, 4.0, 1320.0)]
)
def test_clip_from_mp3(mp3_root, position, offset_s, peak_hz):
    clip = load_clip(TRACK, mp3_root, clip_s=2.0, position=position, sample_rate=16000)
    assert clip.sample_rate == 16000
    assert clip.audio.ndim == 1 and clip.audio.dtype == np.float32  # mono
    assert clip.offset_s == pytest.approx(offset_s)
    assert clip.duration_s == pytest.approx(2.0, abs=0.01)
    assert abs(_peak_hz(clip.audio, 16000) - peak_hz) < 5.0  # the right segment was decoded


def test_clip_longer_than_track_gives_whole_track(mp3_root):
    clip = load_clip(TRACK, mp3_root, clip_s=30.0, position="middle", sample_rate=8000)
    assert clip.offset_s == 0.0
    assert clip.duration_s == pytest.approx(6.0, abs=0.05)


def test_iter_clips_skips_and_counts_missing_files(mp3_root):
    missing = JamendoTrack("track_2", "artist_1", "album_1", "00/2.mp3", 6.0, ())
    cfg = JamendoConfig(audio_root=str(mp3_root), clip_s=1.0, sample_rate=8000)
    report = StageReport("t")
    clips = list(iter_clips([TRACK, missing], cfg, report=report, progress=False))
    assert [c.track.track_id for c in clips] == ["track_0000948"]
    assert len(report.skipped) == 1 and report.skipped[0]["item"].endswith("00/2.mp3")
    strict = JamendoConfig(audio_root=str(mp3_root), clip_s=1.0, sample_rate=8000, fail_on_error=True)
    with pytest.raises(InputError, match="00/2.mp3"):
        list(iter_clips([missing], strict, progress=False))


def test_unreadable_audio_names_file(mp3_root, tmp_path):
    (tmp_path / "48").mkdir()
    (tmp_path / "48" / "948.mp3").write_bytes(b"not an mp3 at all" * 10)
    with pytest.raises(InputError, match="948.mp3"):
        load_clip(TRACK, tmp_path)


def test_missing_audio_root_names_the_param():
    with pytest.raises(ParamsError, match="audio_root") as info:
        load_clip(TRACK, None)
    assert "is not set" in str(info.value)
    gen = iter_clips([TRACK], JamendoConfig(), progress=False)
    with pytest.raises(ParamsError, match="jamendo.audio_root"):
        next(gen)
    with pytest.raises(ParamsError, match="not a directory"):
        load_clip(TRACK, "/nonexistent/jamendo/audio")

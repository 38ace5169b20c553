"""The real-data pipelines (pipelines/mtg-jamendo, pipelines/moisesdb) run end to end on real layouts.

Each test copies the project's code (``mgdata/``, ``stages/``, ``constraints.txt``) and one pipeline folder into
a fresh git + DVC repository, points the folder's params at a dataset tree built in ``tmp_path`` and runs
``dvc repro`` there offline, then checks that a second ``dvc status`` is clean and that the outputs carry the
right labels and splits.

* MTG-Jamendo: the official split-0 rows of ``tests/fixtures/mtg_jamendo`` (44 real metadata rows) with an
  MP3 synthesized at each row's real relative ``PATH`` (one left missing, one undecodable: named, skipped and
  counted), relabel -> clips -> generate (resynth) -> embed (musicnn, logmel) -> classify (moodtheme, quadrant).
* MoisesDB: ``<provider>/<uuid>/data.json`` + one folder per stem with synthesized stems (drums and
  percussion present, and excluded), stems -> tokens (chroma) -> decision.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import yaml

from mgdata.labels.fields import quadrant_of_tags
from mgdata.sources.jamendo import MEDIAEVAL_MOODTHEME_TAGS, read_split
from mgdata.testing import noise, tone

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "mtg_jamendo"
#: Left out of the audio tree (a missing MP3) and written as garbage (an undecodable one): both train rows
#: tagged ``background`` only, so the 56 tags and the quadrants keep their training rows.
MISSING, UNDECODABLE = "track_0000950", "track_0000951"


def _dvc(*args: str, cwd: Path) -> str:
    env = {**os.environ, "MGDATA_PYTHON": sys.executable, "DVC_NO_ANALYTICS": "1"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def _project(tmp_path: Path, pipeline: str) -> Path:
    """A copy of the project (code, root pipeline, one pipeline folder) as a git + DVC repo; returns the folder.

    The folder is its own DVC repo (``dvc init --subdir``, committed): its ``dvc status`` never lists the root
    pipeline's stages and the root's never lists its stages.
    """
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "mgdata", repo / "mgdata", ignore=ignore)
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=ignore)
    for name in ("constraints.txt", "dvc.yaml", "params.yaml"):
        shutil.copy2(ROOT / name, repo / name)
    folder = repo / "pipelines" / pipeline
    shutil.copytree(ROOT / "pipelines" / pipeline, folder, ignore=shutil.ignore_patterns("tmp", "cache", "*.pyc"))
    for name in ("data", "metrics", "stage_reports", "plots", "dvc.lock"):  # a run in the source tree
        path = folder / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    assert (folder / ".dvc" / "config").is_file(), "the pipeline folder must be a DVC subdir repo"
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc("init", "-q", cwd=repo)
    return folder


def _set_params(folder: Path, changes: dict) -> None:
    """Merge ``changes`` (nested dicts) into the folder's params.yaml."""
    path = folder / "params.yaml"
    params = yaml.safe_load(path.read_text())

    def merge(dst: dict, src: dict) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v

    merge(params, changes)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------------------ fast checks


def test_fixture_is_split0_and_covers_the_task():
    """The fixture slice: official split-0 rows, every quadrant in every split, all 56 MediaEval tags in train."""
    tracks = read_split(FIXTURE)
    assert len(MEDIAEVAL_MOODTHEME_TAGS) == 56
    train_tags = {n for t in tracks if t.split == "train" for n in t.tag_names}
    assert train_tags == MEDIAEVAL_MOODTHEME_TAGS
    for split in ("train", "validation", "test"):
        rows = [t for t in tracks if t.split == split]
        assert {n for t in rows for n in t.tag_names} <= train_tags
        assert len({quadrant_of_tags(list(t.tag_names)) for t in rows} - {None}) == 4
    assert "CC BY-NC-SA 4.0" in (FIXTURE / "README.md").read_text()


def test_moodtheme_task_reads_mood_over_the_56_tags():
    from mgdata.classify.config import ClassifyConfig
    from mgdata.classify.data import class_coverage, prepare_task
    from mgdata.classify.tables import EmbTable

    def table(split: str, moods: list[list[str]]) -> EmbTable:
        meta = pl.DataFrame(
            {
                "key": [f"{split}{i}" for i in range(len(moods))],
                "split": [split] * len(moods),
                "mood": moods,
                "track_id": [f"{split}{i}" for i in range(len(moods))],
            },
            schema={"key": pl.Utf8, "split": pl.Utf8, "mood": pl.List(pl.Utf8), "track_id": pl.Utf8},
        )
        return EmbTable(np.zeros((len(moods), 2), np.float32), meta, split)

    real = {
        "train": table("train", [["happy", "mellow"], ["sad"], ["calm", "horror"]]),
        "validation": table("validation", [["happy"], ["sad"]]),
        "test": table("test", [["sad"], ["ambiental"]]),
    }
    td = prepare_task(real, "moodtheme", ClassifyConfig(tasks=["moodtheme"]))
    assert td.multilabel and td.classes == ["calm", "happy", "sad"]  # mellow, horror, ambiental: not MediaEval's
    assert len(td.test) == 1  # the ambiental-only row has no task label
    cov = class_coverage(td)
    assert cov["vocabulary"] == 56 and cov["classes_with_test_positives"] == ["sad"]
    assert len(cov["vocabulary_not_in_train"]) == 53


def test_heldout_draw_passes_over_a_class_last_carrier():
    from mgdata.classify.data import Data
    from mgdata.classify.generated import _heldout_sources

    # t0 alone carries class 0; t1..t3 share class 1.
    y = np.array([[1, 0], [0, 1], [0, 1], [0, 1]])
    tracks = np.array(["t0", "t1", "t2", "t3"], dtype=object)
    train = Data(np.zeros((4, 1), np.float32), y, tracks, tracks, np.array(["train"] * 4, dtype=object))
    for seed in range(8):
        held = _heldout_sources(np.array(["t0", "t1", "t2", "t3"]), 0.5, seed, train)
        assert len(held) == 2 and "t0" not in held
    # Without a last carrier in the way the draw is the permutation's prefix, as before.
    order = np.random.default_rng(3).permutation(np.array(["t1", "t2", "t3"]))
    assert _heldout_sources(np.array(["t1", "t2", "t3"]), 0.34, 3, train) == {order[0]}


# ------------------------------------------------------------------------------------------------ MTG-Jamendo


QUADRANT_SOUND = {
    # (chord above the root, pulses per second): major/minor for valence, pulse rate for arousal.
    "activated_pleasant": ((0, 4, 7), 4.0),
    "deactivated_pleasant": ((0, 4, 7), 1.0),
    "activated_unpleasant": ((0, 3, 7), 4.0),
    "deactivated_unpleasant": ((0, 3, 7), 1.0),
    None: ((0, 5), 2.0),
}
TAGS = sorted(MEDIAEVAL_MOODTHEME_TAGS)


def _jamendo_audio(tags: tuple[str, ...], seed: int, sr: int = 44100, dur_s: float = 12.0) -> np.ndarray:
    """Stereo audio whose chord, pulse and partials follow the row's quadrant and tags."""
    chord, rate = QUADRANT_SOUND[quadrant_of_tags(list(tags))]
    root = 196.0 * 2 ** ((seed % 5) / 12)
    x = tone([root * 2 ** (s / 12) for s in chord], dur_s, sr, 0.3)
    t = np.arange(x.size) / sr
    x = x * (0.6 + 0.4 * (np.sin(2 * np.pi * rate * t) > 0))
    for tag in tags:  # one weak partial per tag, so tags are audible
        if tag in TAGS:
            x = x + tone(1000.0 + 60.0 * TAGS.index(tag), dur_s, sr, 0.03)
    x = x + noise(dur_s, sr, 0.01, seed)
    return np.stack([x, 0.9 * x], axis=1).astype(np.float32)


def _jamendo_tree(tmp_path: Path) -> tuple[Path, Path, list]:
    """The fixture metadata copied to tmp and an audio root with an MP3 at each row's PATH."""
    meta = tmp_path / "mtg-jamendo" / "data"
    shutil.copytree(FIXTURE / "splits", meta / "splits")
    shutil.copy2(FIXTURE / "autotagging_moodtheme.tsv", meta / "autotagging_moodtheme.tsv")
    audio = tmp_path / "mtg-jamendo" / "audio"
    tracks = read_split(meta)
    for i, track in enumerate(tracks):
        path = audio / track.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if track.track_id == MISSING:
            continue
        if track.track_id == UNDECODABLE:
            path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8)
            continue
        sf.write(path, _jamendo_audio(track.tag_names, i), 44100, format="MP3")
    return meta, audio, tracks


@pytest.mark.slow
def test_mtg_jamendo_pipeline(tmp_path):
    folder = _project(tmp_path, "mtg-jamendo")
    meta, audio, tracks = _jamendo_tree(tmp_path)
    _set_params(
        folder,
        {
            "relabel": {"jamendo": {"metadata_dir": str(meta), "audio_root": str(audio), "clip_s": 10.0}},
            # CI size: the budget of 16 labelled 10 s training clips at 5 % is below one clip per class.
            "generate": {"fraction": 0.5, "sample_s": 5.0},
            "embed": {"clip_s": 5.0},
            "classify": {
                "trials": 1,
                "permutations": 50,
                "probes": {
                    "slp": {"hidden": [], "max_epochs": 30, "patience": 5},
                    "mlp": {"hidden": [64], "max_epochs": 30, "patience": 5},
                },
            },
            "executor": {"workers": 2},
        },
    )
    _dvc("repro", cwd=folder)
    assert "up to date" in _dvc("status", cwd=folder)

    # clips: every row but the missing and the undecodable MP3, each named in the report
    m = _read_json(folder / "metrics" / "jamendo.json")
    assert m["tracks"] == len(tracks) - 2
    assert m["skipped"] == 2
    skipped = {
        Path(s["item"]).name: s["reason"]
        for s in _read_json(folder / "stage_reports" / "jamendo.json")["skipped_items"]
    }
    assert "not found" in skipped["950.mp3"] and "unreadable" in skipped["951.mp3"]

    # relabel: the official splits and the paper1 quadrants of the metadata rows
    q = pl.read_parquet(folder / "data" / "relabel" / "jamendo_quadrants.parquet")
    expected = {t.track_id: (t.split, quadrant_of_tags(list(t.tag_names))) for t in tracks}
    assert {r["track_id"]: (r["split"], r["quadrant"]) for r in q.iter_rows(named=True)} == {
        k: v for k, v in expected.items() if v[1] is not None
    }
    for split in ("train", "validation", "test"):
        assert set(q.filter(pl.col("split") == split)["quadrant"]) == {
            "activated_pleasant",
            "deactivated_pleasant",
            "activated_unpleasant",
            "deactivated_unpleasant",
        }

    # embeddings: each split holds its official tracks, with their mood tags and quadrant
    by_id = {t.track_id: t for t in tracks}
    for split in ("train", "validation", "test"):
        e = pl.read_parquet(folder / "data" / "embed" / "logmel" / "jamendo" / "clean" / f"{split}.parquet")
        want = {t.track_id for t in tracks if t.split == split} - {MISSING, UNDECODABLE}
        assert set(e["track_id"]) == want
        for row in e.unique("track_id").iter_rows(named=True):
            track = by_id[row["track_id"]]
            assert row["mood"] == list(track.tag_names)
            assert row["quadrant"] == quadrant_of_tags(list(track.tag_names))
    gen = _read_json(folder / "metrics" / "generate" / "resynth.json")
    assert gen["samples_generated"] > 0

    # classify: the MediaEval task over the tags present, and the quadrants
    for name in ("moodtheme-musicnn", "moodtheme-logmel", "quadrant-musicnn", "quadrant-logmel"):
        metrics = _read_json(folder / "metrics" / "classify" / f"{name}.json")
        assert 0.0 <= metrics["baseline_roc_auc_macro"] <= 1.0
        assert "augmented_resynth_roc_auc_macro_rel" in metrics
    report = _read_json(folder / "stage_reports" / "classify" / "moodtheme-logmel.json")
    classes = report["classes"]
    assert classes["vocabulary"] == 56 and classes["train_classes"] == 56
    assert set(classes["classes"]) == MEDIAEVAL_MOODTHEME_TAGS
    test_tags = {n for t in tracks if t.split == "test" for n in t.tag_names}
    assert set(classes["classes_with_test_positives"]) == test_tags
    baseline = report["experiments"]["baseline"]["summary"]
    for key in ("roc_auc_macro", "pr_auc_macro", "f1_macro", "roc_auc_micro", "pr_auc_micro", "f1_micro"):
        assert f"{key}_mean" in baseline
    quadrant = _read_json(folder / "stage_reports" / "classify" / "quadrant-logmel.json")["classes"]
    assert quadrant["train_classes"] == 4 and quadrant["test_classes_with_positives"] == 4
    md = (folder / "plots" / "classify" / "moodtheme-logmel.md").read_text()
    assert f"the {len(test_tags)} with test positives" in md


# ------------------------------------------------------------------------------------------------ MoisesDB


GENRES = ["pop", "rock", "jazz", "electronic", "singer_songwriter", "country_folk", "rap", "blues"]
#: Pitched stems (semitones above the song's root per bar) and the unpitched ones the pipeline must exclude.
PITCHED = {"vocals": 7, "bass": -12, "guitar": 4, "piano": 10}
UNPITCHED = ("drums", "percussion")


def _moisesdb_tree(tmp_path: Path, n_songs: int = 8, dur_s: float = 20.0, sr: int = 44100) -> tuple[Path, dict]:
    """``<root>/<provider>/<uuid>/data.json`` + ``<stemName>/<id>.wav`` per song; returns root and uuid -> genre."""
    root = tmp_path / "moisesdb"
    genres = {}
    for i in range(n_songs):
        track_id = str(uuid.UUID(int=0x5EED0000 + i))
        track_dir = root / "moisesdb_v0.1" / track_id
        rng = np.random.default_rng(i)
        roots = 110.0 * 2 ** (rng.integers(0, 12, size=int(dur_s / 2.5)) / 12)  # a chord root every 2.5 s
        stems = []
        for s_i, name in enumerate([*PITCHED, *UNPITCHED]):
            if name in PITCHED:
                audio = np.concatenate([tone(r * 2 ** (PITCHED[name] / 12) * 2, 2.5, sr, 0.2) for r in roots])
            else:
                audio = noise(dur_s, sr, 0.1, seed=100 * i + s_i)
            (track_dir / name).mkdir(parents=True)
            tid = f"{track_id[:8]}-{s_i}"
            sf.write(track_dir / name / f"{tid}.wav", np.stack([audio, audio], axis=1), sr, subtype="PCM_16")
            tracks = [{"id": tid, "trackType": name, "extension": "wav", "has_bleed": False}]
            stems.append({"stemName": name, "id": f"stem-{s_i}", "tracks": tracks})
        genres[track_id] = GENRES[i % len(GENRES)]
        (track_dir / "data.json").write_text(
            json.dumps({"song": f"Song {i}", "artist": "Artist", "genre": genres[track_id], "stems": stems})
        )
    return root, genres


@pytest.mark.slow
def test_moisesdb_pipeline(tmp_path):
    from mgdata.splits import assign_splits
    from mgdata.store import decode_json, iter_samples

    folder = _project(tmp_path, "moisesdb")
    root, genres = _moisesdb_tree(tmp_path)
    fractions = {"train": 0.5, "validation": 0.25, "test": 0.25}
    _set_params(
        folder,
        {
            "stems": {"moisesdb_root": str(root), "window_s": 5.0, "overlap_s": 2.5, "split_fractions": fractions},
            "tokens": {"k": [8], "frames_cache": ""},
            "decision": {
                "d_model": 32,
                "n_heads": 2,
                "n_layers": 1,
                "ff_dim": 64,
                "max_epochs": 2,
                "trials": 1,
                "n_permutations": 200,
                "n_renders": 1,
                "render_corpus_windows": 16,
            },
            "executor": {"workers": 2},
        },
    )
    _dvc("repro", cwd=folder)
    assert "up to date" in _dvc("status", cwd=folder)
    assert "pipelines/moisesdb" not in _dvc("status", cwd=folder.parents[1])  # the root's status skips it

    stems = _read_json(folder / "stage_reports" / "stems.json")
    assert stems["tracks_used"] == len(genres)
    assert stems["excluded_stems"] == {"drums": len(genres), "percussion": len(genres)}
    want_split = assign_splits(sorted(genres), fractions=fractions, seed=0)
    seen = {}
    for sample in iter_samples(folder / "data" / "stems"):
        meta = decode_json(sample["json"])
        assert meta["stem"] in PITCHED
        assert meta["style"] == genres[meta["track_id"]] and meta["split"] == want_split[meta["track_id"]]
        seen[meta["track_id"]] = meta["split"]
    assert seen == want_split
    assert sorted(want_split.values()).count("train") == 4

    name = "chroma_stft-s0.5-k8"
    tokens = _read_json(folder / "metrics" / "tokens" / f"{name}.json")
    assert tokens["k"] == 8 and 0 < tokens["usage"] <= 1
    decision = _read_json(folder / "metrics" / "decision" / f"{name}.json")
    assert 0.0 <= decision["free_tpp_model"] <= 100.0 and "best_val_loss" in decision
    assert _read_json(folder / "metrics" / "tokens.json")

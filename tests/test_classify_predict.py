"""``mgdata classify predict``: any format/rate/channels, undecodable files skipped by name, labels -> accuracy."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgdata.classify.config import ProbeConfig
from mgdata.classify.predict import embed_file, embedder_for, predict_files
from mgdata.classify.probe import ProbeModel, train_probe
from mgdata.cli import main
from mgdata.embed.musicfeat import MusicFeatEmbedder
from mgdata.errors import InputError

sys.path.insert(0, str(Path(__file__).parent))
from test_musicfeat import chord_track  # noqa: E402

WINDOWING = {"window_s": 2.0, "hop_s": 1.0, "aggregation": "mean", "short_clip": "pad"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A major/minor probe on musicfeat vectors of synthetic triad tracks."""
    emb = MusicFeatEmbedder()
    tmp = tmp_path_factory.mktemp("m")
    xs, ys = [], []
    for i, root in enumerate(range(55, 67)):
        for minor in (False, True):
            sf.write(tmp / "t.wav", chord_track(root, minor, 70.0 + 10 * i, dur_s=4.0), 22050)
            xs.append(embed_file(emb, tmp / "t.wav", WINDOWING))
            ys.append([0, 1] if minor else [1, 0])
    x, y = np.concatenate(xs), np.array(ys)
    m = train_probe(
        x[:18],
        y[:18],
        x[18:],
        y[18:],
        labels=["major", "minor"],
        multilabel=False,
        cfg=ProbeConfig(hidden=[], lr=0.05, max_epochs=40, patience=10),
        seed=0,
        meta={"embedder": emb.describe(), "windowing": WINDOWING},
    )
    return m.save(tmp / "model")


def test_predict_any_format_skips_bad_file(model_dir, tmp_path, capsys):
    files = []
    x_major = chord_track(60, False, 100.0, dur_s=3.0)
    x_minor = chord_track(62, True, 100.0, dur_s=3.0)
    stereo = np.stack([x_major, x_major], axis=1)
    sf.write(tmp_path / "a.wav", stereo, 44100)  # stereo, another rate (the clip is then 1.5 s: padded)
    sf.write(tmp_path / "b.flac", x_minor, 22050)
    sf.write(tmp_path / "c.ogg", x_major, 22050, format="OGG", subtype="VORBIS")
    files += [tmp_path / "a.wav", tmp_path / "b.flac", tmp_path / "c.ogg"]
    try:
        sf.write(tmp_path / "d.mp3", x_minor, 22050, format="MP3")
        files.append(tmp_path / "d.mp3")
    except (sf.LibsndfileError, TypeError, ValueError):
        pass
    from mgdata.audio import resample

    # Ogg/Opus only takes 8/12/16/24/48 kHz: written at 48 kHz, decoded and resampled by predict.
    sf.write(tmp_path / "e.opus", resample(x_minor, 22050, 48000), 48000, format="OGG", subtype="OPUS")
    files.append(tmp_path / "e.opus")
    (tmp_path / "bad.mp3").write_bytes(b"not audio at all" * 20)
    files.append(tmp_path / "bad.mp3")
    (tmp_path / "labels.csv").write_text("file,label\nb.flac,minor\nc.ogg,major\ne.opus,minor\n")
    argv = [
        "classify",
        "predict",
        "--model",
        str(model_dir),
        "--audio",
        *map(str, files),
        "--labels",
        str(tmp_path / "labels.csv"),
        "--out",
        str(tmp_path / "pred.csv"),
        "--json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "bad.mp3" in captured.err
    assert [Path(p).name for p, _ in out["skipped"]] == ["bad.mp3"]
    preds = {Path(r["path"]).name: r["predicted"] for r in out["rows"]}
    assert preds["b.flac"] == "minor" and preds["c.ogg"] == "major" and preds["e.opus"] == "minor"
    assert out["accuracy"] == 1.0 and out["n_labelled"] == 3
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert lines[0] == "path,predicted,major,minor" and len(lines) == 1 + len(files) - 1


def test_embedder_mismatch_and_missing_model(model_dir, tmp_path):
    m = ProbeModel.load(model_dir)
    m.meta["embedder"] = {"id": "logmel", "settings": {}}
    with pytest.raises(InputError, match="embedder mismatch: logmel gives dim 128"):
        embedder_for(m)
    with pytest.raises(InputError, match="not a probe folder"):
        predict_files(tmp_path, [])


def test_clip_model_scores_a_file_as_the_mean_of_its_clips(model_dir, tmp_path):
    """A model trained on clip rows cuts files into the same clips; the file score is the clips' mean."""
    m = ProbeModel.load(model_dir)
    m.meta["windowing"] = {**WINDOWING, "clip_s": 3.0, "clip_hop_s": 3.0}
    m.save(tmp_path / "clip_model")
    # 3 s major then 3 s minor then 1 s (dropped remainder): two clips of opposite mode.
    x = np.concatenate([chord_track(60, False, 100.0, 3.0), chord_track(60, True, 100.0, 3.0), np.zeros(22050)])
    sf.write(tmp_path / "two.wav", x.astype(np.float32), 22050)
    emb = embedder_for(m)
    rows = embed_file(emb, tmp_path / "two.wav", m.meta["windowing"])
    assert rows.shape == (2, m.dim)
    per_clip = m.predict_proba(rows)
    assert per_clip[0].argmax() == 0 and per_clip[1].argmax() == 1  # major clip, minor clip
    out = predict_files(tmp_path / "clip_model", [tmp_path / "two.wav"])
    scores = out["rows"][0]["scores"]
    np.testing.assert_allclose([scores["major"], scores["minor"]], per_clip.mean(axis=0), rtol=1e-6)

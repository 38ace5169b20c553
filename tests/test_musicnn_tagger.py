"""``mgdata tag`` on synthesized audio in several containers, and patch-wise inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from mgdata.cli import main
from mgdata.errors import InputError


@pytest.fixture(scope="module", autouse=True)
def _wheel_installed():
    from mgdata.musicnn.model import wheel_dir

    try:
        wheel_dir()
    except InputError as exc:
        pytest.skip(str(exc))


def _tone(sr: int, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.05 * np.sin(2 * np.pi * 440.0 * t) * np.exp(-(t % 0.5) * 3.0)).astype(np.float32)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tag")
    x = _tone(44100, 3.5)
    files = {
        "wav": d / "a.wav",
        "flac": d / "stereo.flac",
        "mp3": d / "a.mp3",
        "opus": d / "a.opus",
    }
    sf.write(files["wav"], x, 44100)
    sf.write(files["flac"], np.stack([x, 0.5 * x], axis=1), 44100)
    sf.write(files["mp3"], x, 44100, format="MP3")
    sf.write(files["opus"], _tone(48000, 3.5), 48000, format="OGG", subtype="OPUS")
    (d / "broken.mp3").write_bytes(b"definitely not audio")
    files["broken"] = d / "broken.mp3"
    return files


def test_tag_prints_top_tags_per_file(audio_files, capsys):
    paths = [str(audio_files[k]) for k in ("wav", "flac", "mp3", "opus")]
    rc = main(["tag", "--model", "mtt-musicnn", "--audio", *paths, "--top", "3"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert len(out) == 4 * 4  # a header and three tags per file
    from mgdata.musicnn.model import MTT_LABELS

    for i, path in enumerate(paths):
        assert out[4 * i].startswith(f"{path} (3.5 s, 1 patches")
        for line in out[4 * i + 1 : 4 * i + 4]:
            tag, p = line.strip().rsplit(None, 1)
            assert tag in MTT_LABELS and 0.0 < float(p) < 1.0


def test_tag_json_skips_undecodable_files(audio_files, capsys):
    rc = main(["tag", "--model", "msd-vgg", "--json", "--top", "50", "--audio", str(audio_files["broken"]),
               str(audio_files["wav"]), str(audio_files["broken"].with_name("missing.wav"))])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0
    doc = json.loads(captured.out)
    assert [f["file"] for f in doc["files"]] == [str(audio_files["wav"])]
    probs = list(doc["files"][0]["tags"].values())
    assert len(probs) == 50 and probs == sorted(probs, reverse=True)
    assert "skipped" in captured.err and "broken.mp3" in captured.err and "missing.wav" in captured.err


def test_tag_exits_2_when_nothing_decodes(audio_files, capsys):
    assert main(["tag", "--audio", str(audio_files["broken"])]) == 2
    assert "broken.mp3" in capsys.readouterr().err


def test_short_audio_is_padded_and_batching_does_not_change_results():
    from mgdata.musicnn import model as model_mod
    from mgdata.musicnn.model import load_model
    from mgdata.musicnn.tagger import MODEL_CHOICES, extract

    assert tuple(model_mod.MODELS) == MODEL_CHOICES
    model, _ = load_model("msd-musicnn")
    short, padded = extract(model, _tone(16000, 1.0))
    assert padded and short["taggram"].shape == (1, 50)
    x = _tone(16000, 12.5)  # 782 frames: 4 patches
    a, _ = extract(model, x, ("taggram", "penultimate"), batch=16)
    b, _ = extract(model, x, ("taggram", "penultimate"), batch=3)
    assert a["taggram"].shape == (4, 50) and a["penultimate"].shape == (4, 200)
    np.testing.assert_allclose(a["taggram"], b["taggram"], atol=1e-6)

"""The data-building stages give byte-identical files whatever the executor (serial, process pool, Ray).

Builder tests check each builder; this runs the stage scripts' entry point (``stage_main``)
in order on a small world (12 Bach chorales), once per executor backend, and compares the
sha256 of every file under ``data/`` and ``metrics/``. Classify and decision do not use the
executor (torch, one process), so the chain stops at tokens.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

CHAIN = [
    ("corpus", []),
    ("relabel", []),
    ("stems", []),
    ("generate", ["--generator", "resynth"]),
    ("embed", ["--embedder", "logmel", "--artifact", "corpus", "--scenario", "clean"]),
    ("embed", ["--embedder", "musicfeat", "--artifact", "corpus", "--scenario", "noise_snr20"]),
    ("embed", ["--embedder", "logmel", "--artifact", "resynth", "--scenario", "clean"]),
    ("tokens", ["--segment-s", "0.5", "--k", "16"]),
]


def _params(backend: str) -> str:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["corpus"] |= {"composers": ["bach"], "n_tracks": 12, "max_duration_s": 20.0}
    raw["generate"]["fraction"] = 0.5  # 12 tracks: a 5 % budget would be under one clip per class
    raw["tokens"]["frames_cache"] = ""  # a shared cache would let the second run skip the encoder
    raw["executor"] = {"backend": backend, "workers": 2, "ray_address": None, "max_pending": 0}
    return yaml.safe_dump(raw, sort_keys=False)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for top in ("data", "metrics")
        for p in sorted((root / top).rglob("*"))
        if p.is_file() and ".mgdata.lock" not in p.name
    }


@pytest.mark.slow
def test_stage_chain_is_byte_identical_for_serial_process_and_ray(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from mgdata.pipeline import stage_main

    digests = {}
    for backend in ("serial", "process", "ray"):
        work = tmp_path / backend
        work.mkdir()
        (work / "params.yaml").write_text(_params(backend))
        monkeypatch.chdir(work)
        for name, args in CHAIN:
            assert stage_main(name, ["--params", "params.yaml", "--no-progress", *args]) == 0, (backend, name, args)
        digests[backend] = _digests(work)
    files = digests["serial"]
    assert any(f.startswith("data/tokens/") and f.endswith(".tar") for f in files)
    assert any(f.startswith("data/embed/musicfeat/corpus/noise_snr20/") for f in files)
    assert len(files) > 40
    for backend in ("process", "ray"):
        diff = sorted(f for f in files.keys() | digests[backend].keys() if files.get(f) != digests[backend].get(f))
        assert not diff, f"{backend} differs from serial in {diff[:5]}"

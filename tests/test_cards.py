"""Dataset cards load as they are: every artifact kind, rendered into its folder, read by plain `datasets`.

The loading check runs in a subprocess that never imports mgdata, exactly as a user of the published
folder would, and compares every row with the shards read by mgdata's own reader.
"""

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from mgdata.cards import TEMPLATE_DIR, TEMPLATES, artifact_kind, license_fields, render_card, size_category
from mgdata.cli import main as cli_main
from mgdata.config import ShardConfig
from mgdata.errors import InputError
from mgdata.store import decode_json, decode_npy, iter_samples, read_artifact_info
from mgdata.testing import make_corpus_artifact

pytest.importorskip("datasets")

SR = 16000


class Kinds:
    """One tiny artifact of every kind the default pipeline builds, made by the real builders on first use."""

    def __init__(self, root: Path):
        self.root = root
        self.built: dict[str, Path] = {}

    def __getitem__(self, kind: str) -> Path:
        if kind not in self.built:
            self.built[kind] = getattr(self, "_" + kind.replace("-", "_"))()
        return self.built[kind]

    def _corpus(self) -> Path:
        return make_corpus_artifact(self.root / "corpus", n_tracks=6, n_stems=3, duration_s=4.0, sr=SR)

    def _corpus_mix(self) -> Path:
        return self["corpus"] / "mix"

    def _corpus_stems(self) -> Path:
        return self["corpus"] / "stems"

    def _embed(self) -> Path:
        from mgdata.embed.build import build_embeddings
        from mgdata.embed.config import EmbedConfig

        build_embeddings(
            self["corpus-mix"],
            self.root / "embed",
            cfg=EmbedConfig(),
            embedder="logmel",
            scenario="clean",
            shards=ShardConfig(max_samples=4),
        )
        return self.root / "embed"

    def _generate(self) -> Path:
        from mgdata.generate.build import build_generated
        from mgdata.generate.config import GenerateConfig, ResynthConfig

        metas = [decode_json(s["json"]) for s in iter_samples(self["corpus-mix"])]
        labels = pl.DataFrame(
            {
                "track_id": [m["track_id"] for m in metas],
                "quadrant": ["ab"[i % 2] for i in range(len(metas))],
                "split": [m["split"] for m in metas],
                "duration_s": [4.0] * len(metas),
            }
        )
        cfg = GenerateConfig(fraction=0.5, sample_s=1.0, seed=7, resynth=ResynthConfig(sample_rate=SR))
        build_generated(self["corpus-mix"], labels, self.root / "generate", cfg=cfg, shards=ShardConfig(max_samples=3))
        return self.root / "generate"

    def _stems(self) -> Path:
        from mgdata.stems.build import build_stems_stage
        from mgdata.stems.config import StemsConfig

        build_stems_stage(
            StemsConfig(sample_rate=SR, window_s=2.0, overlap_s=0.5),
            ShardConfig(max_samples=8),
            corpus_stems_dir=self["corpus-stems"],
            out_dir=self.root / "stems",
            progress=False,
        )
        return self.root / "stems"

    def _tokens(self) -> Path:
        from mgdata.tokens.build import build_tokens
        from mgdata.tokens.config import TokensConfig

        build_tokens(
            self["stems"],
            self.root / "tokens",
            segment_s=0.5,
            k=4,
            shards=ShardConfig(max_samples=8),
            cfg=TokensConfig(segment_s=(0.5,), k=(4,), max_iter=10, batch_size=64, frames_cache=""),
        )
        return self.root / "tokens"


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    return Kinds(tmp_path_factory.mktemp("kinds"))


KINDS = ["corpus-mix", "corpus-stems", "embed", "generate", "stems", "tokens"]

LOADER = textwrap.dedent("""
    import hashlib, json, sys
    import datasets
    ds = datasets.load_dataset(sys.argv[1])
    rows = {}
    for split, d in ds.items():
        for row in d:
            out = {}
            for k, v in row.items():
                if k == "__url__":
                    continue
                out[k] = {"sha256": hashlib.sha256(v).hexdigest()} if isinstance(v, bytes) else v
            rows[split + "/" + row["__key__"]] = out
    assert not any(m == "mgdata" or m.startswith("mgdata.") for m in sys.modules), "loader imported mgdata"
    json.dump({"rows": rows, "features": {k: repr(v) for k, v in next(iter(ds.values())).features.items()}},
              sys.stdout, default=lambda a: a.tolist())
""")


def load_without_mgdata(folder: Path, tmp_path: Path) -> dict:
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    r = subprocess.run(
        [sys.executable, "-c", LOADER, str(folder)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def expected_rows(folder: Path) -> dict:
    rows = {}
    for s in iter_samples(folder):
        row = {"__key__": s["__key__"]}
        for m, data in s.items():
            if m.startswith("__"):
                continue
            if m == "json":
                row[m] = decode_json(data)
            elif m.endswith("npy"):
                row[m] = decode_npy(data).tolist()
            else:
                row[m] = {"sha256": hashlib.sha256(data).hexdigest()}
        rows[f"{s['__split__']}/{s['__key__']}"] = row
    return rows


@pytest.mark.parametrize("kind", KINDS)
def test_card_loads_with_plain_datasets_and_rows_match_shards(kinds, kind, tmp_path):
    folder = tmp_path / kind
    shutil.copytree(kinds[kind], folder)
    assert cli_main(["card", str(folder), "--out", str(folder / "README.md")]) == 0
    got = load_without_mgdata(folder, tmp_path)
    want = expected_rows(folder)
    assert set(got["rows"]) == set(want) and want
    for key, row in want.items():
        assert got["rows"][key].keys() == row.keys(), key
        for m, v in row.items():
            if isinstance(v, list):  # npy: exact values (float16/32 survive the JSON round trip as Python floats)
                np.testing.assert_array_equal(np.asarray(got["rows"][key][m]), np.asarray(v))
            else:
                assert got["rows"][key][m] == v, (key, m)
    info = read_artifact_info(folder)
    for m in info["members"]:
        if m.endswith("flac"):
            assert got["features"][m] == "Value('binary')"
        if m == "json":
            assert got["features"][m].startswith("Json(")


@pytest.mark.parametrize("kind", KINDS)
def test_card_header_and_sections(kinds, kind):
    folder = kinds[kind]
    info = read_artifact_info(folder)
    text = render_card(folder)
    header = yaml.safe_load(text.split("---\n")[1])
    assert "/" not in header["pretty_name"] and str(folder) not in header["pretty_name"]
    assert header["license"] == "other" or header["license"] == "cc0-1.0"
    if header["license"] == "other":
        assert header["license_name"] and header["license_link"]
    assert header["task_categories"] and "webdataset" in header["tags"]
    assert header["size_categories"] == [size_category(info["samples"])]
    files = header["configs"][0]["data_files"]
    assert {f["split"] for f in files} == set(info["splits"])
    for f in files:  # each pattern matches exactly the shards of its split, never an index sidecar
        matched = sorted(p.name for p in folder.glob(f["path"]))
        assert matched == sorted(info["splits"][f["split"]]["shards"]) and not any(n.endswith(".idx") for n in matched)
    feats = {f["name"]: f for f in header["dataset_info"]["features"]}
    assert set(feats) == {"__key__", "__url__", *info["members"]}
    for section in ("## Fields", "## Splits", "## How it was made", "## Licensing", "## Citations", "## Loading"):
        assert section in text
    assert info["provenance"]["params_hash"] in text and info["provenance"]["licence"] in text
    for split, v in info["splits"].items():
        assert f"| {split} | {v['samples']} | {v['seconds'] / 3600:.4f} |" in text


def test_template_follows_kind_and_mismatch_is_an_error(kinds):
    assert artifact_kind(read_artifact_info(kinds["generate"])) == "generate"
    assert "generated audio" in render_card(kinds["generate"])
    assert "Embeddings of the clips" in render_card(kinds["embed"], "embed")
    with pytest.raises(InputError, match="does not match the artifact kind 'embed'.*--template embed"):
        render_card(kinds["embed"], "corpus")
    with pytest.raises(InputError, match="no such card template 'nope'"):
        render_card(kinds["embed"], "nope")
    assert cli_main(["card", str(kinds["embed"]), "--template", "tokens"]) == 2


def test_unknown_kind_needs_no_guess(tmp_path, kinds):
    folder = tmp_path / "odd"
    shutil.copytree(kinds["corpus-mix"], folder)
    info = json.loads((folder / "artifact.json").read_text())
    info["provenance"]["builder"] = "mystery"
    (folder / "artifact.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="no card template for artifact kind 'mystery'"):
        render_card(folder)


def test_licence_mapping():
    assert license_fields("synthetic test audio (CC0)", "corpus") == {"license": "cc0-1.0"}
    other = license_fields("music21 corpus ...; TimGM6mb SoundFont: GPL-2.0", "corpus")
    assert other["license"] == "other" and other["license_name"] == "mgdata-corpus-sources" and other["license_link"]


def test_loading_snippet_runs(kinds, tmp_path):
    folder = tmp_path / "mix"
    shutil.copytree(kinds["corpus-mix"], folder)
    text = render_card(folder, load_path="mix")
    (folder / "README.md").write_text(text)
    snippet = text.split("```python\n")[1].split("```")[0]
    assert 'load_dataset("mix")' in snippet
    r = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "synth-" in r.stdout


def test_templates_are_package_data():
    assert TEMPLATE_DIR.parent.name == "cards" and TEMPLATE_DIR.parent.parent.name == "mgdata"
    assert {p.stem for p in TEMPLATE_DIR.glob("*.md") if not p.stem.startswith("_")} == set(TEMPLATES)
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"mgdata.cards" = ["templates/*.md", "templates/*.yaml"]' in pyproject


@pytest.mark.slow
def test_built_wheel_ships_the_templates(tmp_path):
    import zipfile

    # Build from a copy: setuptools writes build/ next to the sources.
    src = Path(__file__).resolve().parents[1]
    repo = tmp_path / "src"
    repo.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(src / name, repo / name)
    shutil.copytree(src / "mgdata", repo / "mgdata", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(repo),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    names = zipfile.ZipFile(next((tmp_path / "dist").glob("mgdata-*.whl"))).namelist()
    for t in (*TEMPLATES, "_base"):
        assert f"mgdata/cards/templates/{t}.md" in names
    assert "mgdata/cards/templates/citations.yaml" in names

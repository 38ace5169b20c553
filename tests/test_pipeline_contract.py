"""Contract test: every builder, chained as in dvc.yaml, declares provenance and reads its upstream format.

The default-params chain (corpus -> relabel -> stems -> generate -> embed -> tokens)
runs here on a small synthetic corpus in the corpus layout. Each artifact must pass
``inspect_artifact`` (checksums, and provenance in artifact.json and in every
sample's json), and each artifact.json must name its builder, source, version,
seed and licence.
"""

import json
import shutil

import polars as pl
import pytest

from mgdata.config import ShardConfig
from mgdata.embed.build import build_embeddings
from mgdata.embed.config import EmbedConfig
from mgdata.generate.build import build_generated
from mgdata.generate.config import GenerateConfig
from mgdata.labels.config import RelabelConfig
from mgdata.labels.relabel import build_relabel
from mgdata.provenance import REQUIRED
from mgdata.stems.build import build_stems_stage
from mgdata.stems.config import StemsConfig
from mgdata.store import inspect_artifact, iter_samples, read_artifact_info
from mgdata.testing import make_corpus_artifact
from mgdata.tokens.build import build_tokens
from mgdata.tokens.config import TokensConfig

SHARDS = ShardConfig(max_samples=16)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    corpus = make_corpus_artifact(root / "corpus", n_tracks=10, n_stems=3, duration_s=8.0, sr=16000)
    build_relabel(corpus / "manifest.parquet", root / "relabel", cfg=RelabelConfig())
    build_stems_stage(
        StemsConfig(window_s=4.0, overlap_s=1.0, sample_rate=16000),
        SHARDS,
        corpus_stems_dir=corpus / "stems",
        out_dir=root / "stems",
        progress=False,
    )
    build_generated(
        corpus / "mix",
        root / "relabel" / "corpus_quadrants.parquet",
        root / "generate",
        cfg=GenerateConfig(fraction=0.1, sample_s=1.0),
        shards=SHARDS,
        generator="resynth",
    )
    build_embeddings(corpus / "mix", root / "embed", cfg=EmbedConfig(), embedder="logmel", shards=SHARDS)
    build_tokens(root / "stems", root / "tokens", cfg=TokensConfig(frames_cache=""), segment_s=0.5, k=4, shards=SHARDS)
    return root


@pytest.mark.parametrize("artifact", ["corpus/mix", "corpus/stems", "stems", "generate", "embed", "tokens"])
def test_every_artifact_declares_provenance(chain, artifact):
    path = chain / artifact
    report = inspect_artifact(path)
    assert report["ok"], report["errors"]
    assert report["samples"] > 0
    prov = read_artifact_info(path)["provenance"]
    for key in (*REQUIRED, "mgdata_version"):
        assert isinstance(prov[key], str) and prov[key].strip(), key
    assert isinstance(prov["seed"], int)


def test_samples_carry_provenance_and_inherit_labels(chain):
    labels = dict(
        pl.read_parquet(chain / "relabel" / "corpus_quadrants.parquet").select("track_id", "quadrant").iter_rows()
    )
    for sample in iter_samples(chain / "generate"):
        meta = json.loads(sample["json"])
        assert {"source", "licence", "seed"} <= set(meta["provenance"])
        assert meta["label"] in set(labels.values())
    prov = json.loads((chain / "relabel" / "corpus_quadrants.provenance.json").read_text())
    assert prov["builder"] == "relabel" and prov["licence"]


def _with_upstream_fingerprint(src, dst, new_fp):
    """Copy an artifact and change only the fingerprint its artifact.json records.

    The samples stay byte-identical, so a downstream fingerprint can differ only
    because the upstream fingerprint is part of its hash.
    """
    shutil.copytree(src, dst)
    info = json.loads((dst / "artifact.json").read_text())
    info["fingerprint"] = new_fp
    (dst / "artifact.json").write_text(json.dumps(info))
    return dst


def test_downstream_reads_upstream_fingerprints(chain, tmp_path):
    """Token and embedding artifacts change fingerprint when their input's fingerprint changes.

    Rebuilding from a copy of the input that differs only in its recorded fingerprint
    must give another fingerprint: if the upstream fingerprint were dropped from the
    hash, the params alone would give the same one and DVC-less rebuilds would reuse
    stale shards.
    """
    stems = read_artifact_info(chain / "stems")
    tokens = read_artifact_info(chain / "tokens")
    assert tokens["provenance"]["source_version"] == stems["fingerprint"]
    other_stems = _with_upstream_fingerprint(chain / "stems", tmp_path / "stems", "0" * 16)
    res = build_tokens(
        other_stems, tmp_path / "tokens", cfg=TokensConfig(frames_cache=""), segment_s=0.5, k=4, shards=SHARDS
    )
    assert res.fingerprint != tokens["fingerprint"]
    assert read_artifact_info(tmp_path / "tokens")["fingerprint"] == res.fingerprint

    mix = read_artifact_info(chain / "corpus" / "mix")
    embed = read_artifact_info(chain / "embed")
    assert embed["provenance"]["source_version"] == mix["fingerprint"]
    other_mix = _with_upstream_fingerprint(chain / "corpus" / "mix", tmp_path / "mix", "0" * 16)
    res = build_embeddings(other_mix, tmp_path / "embed", cfg=EmbedConfig(), embedder="logmel", shards=SHARDS)
    assert res.fingerprint != embed["fingerprint"]
    assert read_artifact_info(tmp_path / "embed")["fingerprint"] == res.fingerprint

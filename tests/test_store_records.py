"""The one record contract: every sample json is read back into its dataclass through record_from_json."""

from __future__ import annotations

import pytest

from mgdata.corpus.records import StemRecord, TrackRecord
from mgdata.embed.records import EmbeddingRecord
from mgdata.errors import InputError
from mgdata.generate.records import GeneratedProvenance, GeneratedRecord
from mgdata.stems.records import StemWindowRecord
from mgdata.store import encode_json, record_from_json
from mgdata.tokens.records import TokenRecord

PROV = {"builder": "t", "source": "s", "source_version": "1", "licence": "CC0", "seed": 0, "params_hash": "h"}
STEM_WINDOW = dict(
    key="trk_w000_s00",
    track_id="trk",
    window_index=0,
    start_s=0.0,
    length_s=3.0,
    stem_index=0,
    stem="soprano",
    instrument="Violin",
    split="train",
    quadrant="activated_pleasant",
    mood=["happy"],
    style="bach",
    source="corpus",
    sample_rate=16000,
    provenance=PROV,
)
TOKEN = dict(
    key="trk_w000_s00",
    track_id="trk",
    window_index=0,
    stem_index=0,
    stem="soprano",
    split="train",
    quadrant=None,
    mood=None,
    style=None,
    segment_s=0.5,
    k=16,
    encoder="chroma_stft",
    codebook_sha256="ab",
    n_tokens=6,
    provenance=PROV,
)
GENERATED = dict(
    key="a_0000",
    label="a",
    index=0,
    split="train",
    generator="resynth",
    sample_rate=16000,
    duration_s=1.0,
    seed=7,
    prompt=None,
    source_key="trk",
    offset_s=0.5,
    params_hash="h",
    mgdata_version="0",
    quadrant="activated_pleasant",
    mood=["happy"],
    style="bach",
    track_id="trk",
    provenance={**PROV, "policy": {"x": 1}},
)
EMBEDDING = dict(
    key="trk",
    split="train",
    quadrant="activated_pleasant",
    mood=["happy"],
    style="bach",
    track_id="trk",
    labels=["happy"],
    label="activated_pleasant",
    source={"artifact": "a", "fingerprint": "f", "key": "trk"},
    embedder={"id": "logmel"},
    windowing={"window_s": 2.0},
    n_windows=1,
    n_frames=3,
    padded=False,
    duration_s=2.0,
    sample_rate=16000,
    deformation={"name": "clean"},
    provenance=PROV,
)
STEM = dict(
    track_id="trk",
    stem_index=0,
    stem="soprano",
    instrument="Violin",
    program=40,
    split="train",
    quadrant="activated_pleasant",
    mood=["happy"],
    style="bach",
    sample_rate=16000,
    duration_s=2.0,
)
CASES = [
    (StemWindowRecord, STEM_WINDOW, {}),
    (TokenRecord, TOKEN, {}),
    (GeneratedRecord, GENERATED, {}),
    (EmbeddingRecord, EMBEDDING, {}),
    (StemRecord, STEM, {"provenance": PROV}),
]


@pytest.mark.parametrize(("cls", "data", "envelope"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_round_trip_record_json_bytes_record(cls, data, envelope):
    raw = encode_json({**data, **envelope})
    rec = cls.from_json(raw, "shard-000000.tar: sample x")
    assert rec.to_json(**envelope) == raw  # byte-identical: same keys, same values, sorted
    assert cls.from_json(rec.to_json(**envelope)) == rec


@pytest.mark.parametrize(("cls", "data", "envelope"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_unknown_field_is_a_one_line_error_naming_where_and_field(cls, data, envelope):
    with pytest.raises(InputError) as err:
        cls.from_dict({**data, **envelope, "colour": "red"}, where="train-000001.tar: sample trk")
    msg = str(err.value)
    assert "\n" not in msg and "train-000001.tar: sample trk" in msg and "unknown field(s) colour" in msg


@pytest.mark.parametrize(("cls", "data", "envelope"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_missing_field_is_a_one_line_error(cls, data, envelope):
    gone = next(n for n in data if n not in cls.json_optional and n != "provenance")
    with pytest.raises(InputError) as err:
        cls.from_dict({k: v for k, v in data.items() if k != gone}, where="train-000001.tar: sample trk")
    msg = str(err.value)
    assert "\n" not in msg and "train-000001.tar: sample trk" in msg and f"lacks {gone}" in msg


def test_from_sample_names_shard_and_key():
    sample = {"__shard__": "train-000003.tar", "__key__": "trk", "json": encode_json({**STEM, "extra": 1})}
    with pytest.raises(InputError, match=r"train-000003.tar: sample trk.*unknown field\(s\) extra"):
        StemRecord.from_sample(sample)


def test_track_record_tolerates_only_its_provenance_envelope():
    base = dict(
        track_id="t",
        score_id="s",
        composer="bach",
        style="bach",
        title="t",
        split="train",
        quadrant="activated_pleasant",
        mood=["happy"],
        tags=["bach", "happy"],
        mood_tags=["happy"],
        key="C major",
        mode="major",
        tempo_class="fast",
        tempo_bpm=120.0,
        velocity=90,
        duration_s=2.0,
        sample_rate=16000,
        parts=["a", "b"],
        instruments=["x", "y"],
        programs=[0, 0],
    )
    rec = TrackRecord.from_dict({**base, "provenance": PROV})
    assert rec.unpitched_parts == []  # optional field absent in old jsons: its default
    with pytest.raises(InputError, match="unknown field"):
        TrackRecord.from_dict({**base, "provenance": PROV, "bpm": 1})


def test_record_from_json_rejects_non_objects_and_bad_values():
    with pytest.raises(InputError, match="not an object"):
        record_from_json(StemRecord, [1], what="stem")
    with pytest.raises(InputError, match="stem-window json"):
        StemWindowRecord.from_dict({**STEM_WINDOW, "window_index": "x"})


def test_generated_provenance_is_a_record_with_the_dict_bytes():
    data = {
        **{k: v for k, v in PROV.items() if k != "source"},
        "mgdata_version": "0",
        "params_seed": 7,
        "base_seed": 11,
        "retries": 0,
        "generator": "resynth",
        "mode": "source",
        "model": None,
        "revision": None,
        "model_hash": None,
        "settings": {"name": "resynth"},
        "generator_config": {"sample_rate": 16000},
        "policy": {"fraction": 0.5},
        "label": "a",
        "prompt": None,
        "source": {"key": "trk", "offset_s": 0.5},
        "prime": None,
        "batch": None,
    }
    prov = GeneratedProvenance.from_dict(data)
    assert prov.to_json() == encode_json(data)
    with pytest.raises(InputError, match="generated provenance json has unknown field"):
        GeneratedProvenance.from_dict({**data, "extra": 1})


def test_corpus_stems_reader_skips_a_stem_json_with_an_unknown_field(tmp_path):
    from mgdata.audio import encode_flac
    from mgdata.config import ShardConfig
    from mgdata.provenance import Provenance
    from mgdata.report import StageReport
    from mgdata.sources.multitrack import iter_corpus_tracks
    from mgdata.store import ArtifactWriter, Sample
    from mgdata.testing import tone

    prov = Provenance(builder="testing", source="t", source_version="1", licence="CC0", seed=0, params_hash="x")
    with ArtifactWriter(tmp_path / "stems", fingerprint="fp", provenance=prov, shards=ShardConfig()) as w:
        for track_id in ("a-ok", "b-bad"):
            for i in range(2):
                meta = {**STEM, "track_id": track_id, "stem_index": i, "stem": f"part{i}", "provenance": PROV}
                if track_id == "b-bad" and i == 1:
                    meta["colour"] = "red"
                flac = encode_flac(tone(220.0 * (i + 1), 2.0, 16000), 16000)
                w.write("train", Sample(f"{track_id}_s{i:02d}", {"flac": flac, "json": encode_json(meta)}))
    report = StageReport("stems")
    tracks = list(iter_corpus_tracks(tmp_path / "stems", report=report))
    assert [t.track_id for t in tracks] == ["a-ok", "b-bad"]  # b-bad keeps its one good stem
    assert list(tracks[1].stems) == ["part0"]
    skips = report.to_dict()["skipped_items"]
    assert any("b-bad_s01" in str(s) and "unknown field(s) colour" in str(s) for s in skips), skips

"""The compose generator: determinism, class cues, length, provenance, novelty, config errors, builder path."""

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig, from_dict
from mgdata.corpus.scores import ParsedScore, PartNotes, track_id_of
from mgdata.errors import InputError, ParamsError
from mgdata.generate.base import GENERATORS, GenRequest, get_generator
from mgdata.generate.build import build_generated, regenerate
from mgdata.generate.compose import ComposeGenerator, Conditioning
from mgdata.generate.compose_model import CACHE_VERSION, TrainingPiece, music21_version, tonic_pc
from mgdata.generate.config import ComposeConfig, GenerateConfig
from mgdata.generate.novelty import NoveltyIndex, excerpt, novelty_ratio
from mgdata.store import decode_json, iter_samples

SR = 16000
CHORDS = {
    "major": [(0, 4, 7), (5, 9, 0), (7, 11, 2), (9, 0, 4), (2, 5, 9)],
    "minor": [(0, 3, 7), (5, 8, 0), (7, 11, 2), (8, 0, 3), (2, 5, 8)],
}
TONICS = ["C", "D", "F", "G", "A", "Bb"]


def _nearest(prev: int, pcs: tuple, lo: int, hi: int, rng) -> int:
    cands = [p for p in range(lo, hi + 1) if p % 12 in pcs]
    return min(cands, key=lambda p: (abs(p - prev), rng.random()))


def _piece(score_id: str, mode: str, n_voices: int, seed: int) -> ParsedScore:
    """A small chorale-like piece: a random walk over the mode's diatonic triads, close voice-leading."""
    rng = np.random.default_rng(seed)
    tonic = TONICS[seed % len(TONICS)]
    t = tonic_pc(tonic)
    ranges = [(65, 79), (57, 72), (50, 65), (40, 55)]
    ranges = ranges if n_voices == 4 else [ranges[0], ranges[-1]]
    prev = [(lo + hi) // 2 for lo, hi in ranges]
    notes = [[] for _ in ranges]
    beat = 0.0
    for b in range(24):
        chord = CHORDS[mode][0 if b in (0, 23) else int(rng.integers(len(CHORDS[mode])))]
        pcs = tuple((c + t) % 12 for c in chord)
        for v, (lo, hi) in enumerate(ranges):
            p = (chord[0] + t) % 12 + 12 * (hi // 12) if v == len(ranges) - 1 else _nearest(prev[v], pcs, lo, hi, rng)
            p = p if lo <= p <= hi else p - 12
            if v == 0 and rng.random() < 0.4:  # passing eighths in the top voice
                notes[v] += [(beat, 0.5, p), (beat + 0.5, 0.5, _nearest(p + 2, pcs, lo, hi, rng))]
            else:
                notes[v].append((beat, 1.0, p))
            prev[v] = p
        beat += 1.0
    parts = tuple(PartNotes(f"part{i + 1}", tuple(n)) for i, n in enumerate(notes))
    return ParsedScore(
        score_id, track_id_of(score_id), score_id.split("/")[0], score_id, f"{tonic} {mode}", mode, parts
    )


def _training() -> list[TrainingPiece]:
    out = []
    for i in range(8):
        mode = "major" if i % 2 == 0 else "minor"
        style, voices = ("alpha", 4) if i < 6 else ("beta", 2)
        out.append(TrainingPiece(_piece(f"{style}/p{i:02d}.mxl", mode, voices, seed=i), style))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A manifest (train + test rows) and a parse cache holding the synthetic scores: no music21 parsing."""
    root = tmp_path_factory.mktemp("compose")
    pieces = _training()
    test_piece = _piece("alpha/t99.mxl", "major", 4, seed=99)
    cache = root / "cache"
    (cache / f"music21-{music21_version()}").mkdir(parents=True)
    rows = []
    for p, split in [*((p, "train") for p in pieces), (TrainingPiece(test_piece, "alpha"), "test")]:
        s = p.score
        path = cache / f"music21-{music21_version()}" / f"{s.track_id}.json"
        path.write_text(json.dumps({"version": CACHE_VERSION, "score_id": s.score_id, "score": s.to_dict()}))
        rows.append({"track_id": s.track_id, "score_id": s.score_id, "style": p.style, "mode": s.mode, "split": split})
    manifest = root / "manifest.parquet"
    pl.DataFrame(rows).write_parquet(manifest)
    cfg = ComposeConfig(manifest=str(manifest), cache_dir=str(cache), sample_rate=SR)
    return {"cfg": cfg, "gen": ComposeGenerator(cfg), "pieces": pieces, "test": test_piece, "root": root}


def test_same_seed_gives_the_same_bytes_and_other_seeds_differ(world):
    req = GenRequest("k0", "activated_pleasant", 11, 1.5)
    a = world["gen"].generate([req])[0]
    b = ComposeGenerator(world["cfg"]).generate([req])[0]  # a fresh generator trains its own model
    c = world["gen"].generate([GenRequest("k0", "activated_pleasant", 12, 1.5)])[0]
    assert a.dtype == np.float32 and a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    assert np.sqrt(np.mean(a**2)) > 1e-3


@pytest.mark.parametrize("duration_s", [0.7, 2.0])
def test_output_length_is_the_requested_duration(world, duration_s):
    y = world["gen"].generate([GenRequest("k", "deactivated_unpleasant", 3, duration_s)])[0]
    assert len(y) == round(duration_s * SR)


def test_every_voice_of_a_piece_sounds(world):
    for seed in range(20):
        piece = world["gen"].compose(Conditioning("beta", "major", "fast"), seed, 1.0).piece
        assert len(piece.parts) == 2 and all(p.notes for p in piece.parts)


def _third_counts(gen, mode: str) -> tuple[int, int]:
    minor3 = major3 = 0
    for seed in range(12):
        clip = gen.compose(Conditioning("alpha", mode, "slow"), seed, 3.0)
        t = tonic_pc(clip.piece.key)
        pcs = [(p - t) % 12 for part in clip.piece.parts for _, _, p in part.notes]
        minor3 += pcs.count(3)
        major3 += pcs.count(4)
    return minor3, major3


def test_mode_cue_follows_the_class(world):
    m3, M3 = _third_counts(world["gen"], "major")
    assert M3 > 5 * max(m3, 1)
    m3, M3 = _third_counts(world["gen"], "minor")
    assert m3 > 5 * max(M3, 1)


def test_arousal_cue_tempo_and_velocity_follow_the_corpus_rule(world):
    gen, cfg = world["gen"], world["cfg"]
    for seed in range(6):
        for arousal, (tlo, thi), (vlo, vhi) in [
            ("fast", cfg.fast_tempo_bpm, cfg.fast_velocity),
            ("slow", cfg.slow_tempo_bpm, cfg.slow_velocity),
        ]:
            clip = gen.compose(Conditioning("beta", "minor", arousal), seed, 1.0)
            assert tlo <= clip.tempo_bpm <= thi and vlo <= clip.velocity <= vhi
            assert set(clip.programs) <= set(cfg.programs) and len(clip.programs) == len(clip.piece.parts)


def test_labels_resolve_to_a_conditioning_and_bad_labels_name_the_key(world):
    gen = world["gen"]
    assert gen.conditioning(GenRequest("k", "activated_unpleasant", 1, 1.0)).mode == "minor"
    assert gen.conditioning(GenRequest("k", "activated_unpleasant", 1, 1.0)).arousal == "fast"
    assert gen.conditioning(GenRequest("k", "calm", 1, 1.0)).arousal == "slow"
    assert gen.conditioning(GenRequest("k", "beta", 1, 1.0)).style == "beta"
    prompt = gen.prompt_for(GenRequest("k", "deactivated_pleasant", 5, 1.0))
    assert Conditioning.from_prompt(prompt, "k") == gen.conditioning(GenRequest("k", "deactivated_pleasant", 5, 1.0))
    with pytest.raises(InputError, match="sample_7"):
        gen.generate([GenRequest("sample_7", "jazz", 1, 1.0)])


def test_describe_names_model_version_and_training_fingerprint(world, tmp_path):
    d = world["gen"].describe()
    assert d["model"] == "mgdata.generate.compose" and d["revision"]
    assert d["training"]["n_tracks"] == len(world["pieces"])  # the test row is not trained on
    assert d["model_hash"] == d["training"]["fingerprint"] == world["gen"].training_fingerprint
    json.dumps(d)
    other = ComposeGenerator(world["cfg"], training=world["pieces"][:-1])
    assert other.training_fingerprint != world["gen"].training_fingerprint


def _four_train_tracks() -> pl.DataFrame:
    """Labels of four 4 s training tracks, two per quadrant."""
    quadrants = ["activated_pleasant"] * 2 + ["deactivated_unpleasant"] * 2
    return pl.DataFrame(
        {"track_id": ["a", "b", "c", "d"], "quadrant": quadrants, "split": ["train"] * 4, "duration_s": [4.0] * 4}
    )


def test_builder_text_mode_records_provenance_and_regenerates_the_bytes(world, tmp_path, monkeypatch):
    labels = _four_train_tracks()
    cfg = GenerateConfig(generators=["compose"], fraction=0.25, sample_s=1.0, seed=4, compose=world["cfg"])
    out = tmp_path / "compose"
    result = build_generated(None, labels, out, cfg=cfg, shards=ShardConfig(max_samples=4), generator="compose")
    assert result.n_samples == 4 and not result.failed
    samples = list(iter_samples(out))
    for s in samples:
        meta = decode_json(s["json"])
        prov = meta["provenance"]
        cond = Conditioning.from_prompt(meta["prompt"], meta["key"])
        assert cond.arousal == ("fast" if meta["label"].startswith("activated") else "slow")
        assert prov["model_hash"] == world["gen"].training_fingerprint and prov["seed"] == meta["seed"]
        # Every task can use the clip: the style it was composed in and the moods of its mode and arousal.
        assert meta["style"] == cond.style and meta["quadrant"] == meta["label"] and len(meta["mood"]) == 2
    meta = decode_json(samples[-1]["json"])
    y, sr = regenerate(meta)
    assert encode_flac(y, sr) == samples[-1]["flac"]


def test_compose_fraction_overrides_the_budget_of_compose_only(world, tmp_path):
    """generate.compose.fraction sizes compose's artifact; null keeps generate.fraction; other generators keep it."""
    labels = _four_train_tracks()
    shards = ShardConfig(max_samples=8)

    def build(fraction, name):
        cfg = GenerateConfig(
            generators=["compose"],
            fraction=0.25,
            sample_s=1.0,
            seed=4,
            compose=replace(world["cfg"], fraction=fraction),
        )
        return cfg, build_generated(None, labels, tmp_path / name, cfg=cfg, shards=shards, generator="compose")

    cfg_null, same = build(None, "null")
    cfg_own, big = build(0.75, "own")
    assert same.plan.budget.fraction == 0.25 and same.n_samples == 4  # 0.25 x 16 s / 2 classes / 1 s
    assert big.plan.budget.fraction == 0.75 and big.n_samples == 12
    assert cfg_own.fraction_for("compose") == 0.75 and cfg_own.fraction_for("resynth") == 0.25
    assert cfg_null.fraction_key("compose") == "generate.fraction"
    assert cfg_own.fraction_key("compose") == "generate.compose.fraction"
    # Recorded where the existing budget fields are: artifact info, fingerprint, every sample's provenance.
    assert big.fingerprint != same.fingerprint
    info = json.loads((tmp_path / "own" / "artifact.json").read_text())
    assert info["budget"]["fraction"] == 0.75
    assert info["provenance"]["extra"]["budget"]["samples_per_class"] == 6
    for s in iter_samples(tmp_path / "own"):
        prov = decode_json(s["json"])["provenance"]
        assert prov["policy"]["fraction"] == 0.75 and prov["generator_config"]["fraction"] == 0.75
    # The same keys are the same clips: a bigger budget only appends samples per class.
    small = {decode_json(s["json"])["key"]: s["flac"] for s in iter_samples(tmp_path / "null")}
    large = {decode_json(s["json"])["key"]: s["flac"] for s in iter_samples(tmp_path / "own")}
    assert set(small) < set(large) and all(large[k] == v for k, v in small.items())


def test_novelty_of_a_copy_is_high_and_of_compose_output_low(world):
    index = NoveltyIndex([p.score for p in world["pieces"]], n=4)
    copy = excerpt(world["pieces"][0].score, 4.0, 8.0)
    assert index.similarity(copy) == (1.0, world["pieces"][0].score.track_id)
    real = [index.similarity(excerpt(world["test"], s, 8.0))[0] for s in (0.0, 8.0, 16.0)]
    composed = [
        index.similarity(world["gen"].compose(Conditioning("alpha", "major", "fast"), seed, 4.0).piece)[0]
        for seed in range(6)
    ]
    assert float(np.nanmean(composed)) < 0.6
    assert novelty_ratio(1.0, real) > novelty_ratio(float(np.nanmean(composed)), real)
    assert np.isnan(index.similarity(excerpt(copy, 0.0, 1.0))[0])  # too few notes for one n-gram


def test_config_errors_name_the_key():
    with pytest.raises(ParamsError, match=r"generate\.compose\.max_voices"):
        from_dict(GenerateConfig, {"compose": {"max_voices": 1}}, "generate")
    with pytest.raises(ParamsError, match=r"generate\.compose\.fast_tempo_bpm"):
        from_dict(GenerateConfig, {"compose": {"fast_tempo_bpm": [70.0, 90.0]}}, "generate")
    with pytest.raises(ParamsError, match=r"generate\.compose\.sample_rate"):
        from_dict(GenerateConfig, {"compose": {"sample_rate": "22050"}}, "generate")
    with pytest.raises(ParamsError, match=r"generate\.compose\.nonchord_weigth"):
        from_dict(GenerateConfig, {"compose": {"nonchord_weigth": 0.1}}, "generate")
    for bad in (0.0, 1.5, "0.25"):
        with pytest.raises(ParamsError, match=r"generate\.compose\.fraction"):
            from_dict(GenerateConfig, {"compose": {"fraction": bad}}, "generate")
    assert from_dict(GenerateConfig, {"compose": {"fraction": None}}, "generate").fraction_for("compose") == 0.05
    assert "compose" in GENERATORS


def test_parsed_scores_are_cached_per_music21_version(tmp_path, monkeypatch):
    from mgdata.generate import compose_model

    calls = []
    score = _training()[0].score

    def fake_parse(score_id):
        calls.append(score_id)
        return score

    monkeypatch.setattr(compose_model, "parse_score", fake_parse)
    first = compose_model.load_parsed(score.score_id, tmp_path)
    again = compose_model.load_parsed(score.score_id, tmp_path)
    assert first == again == score and calls == [score.score_id]
    assert (tmp_path / f"music21-{music21_version()}" / f"{score.track_id}.json").is_file()


def test_registry_builds_it_and_a_missing_manifest_names_the_file(tmp_path):
    with pytest.raises(InputError, match="manifest"):
        get_generator("compose", ComposeConfig(manifest=str(tmp_path / "none.parquet")))

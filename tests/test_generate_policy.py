"""Budget arithmetic and the seeded draw of sources/primes (mgdata.generate.policy)."""

import math

import pytest

from mgdata.errors import ParamsError
from mgdata.generate.policy import (
    Budget,
    ClipRef,
    Plan,
    TrackInfo,
    compute_budget,
    derive_seed,
    draw_clips,
    grid_clips,
    plan_generation,
    sample_key,
)


def _tracks(spec):
    """spec: list of (track_id, label, split, duration_s)."""
    return [TrackInfo(*row) for row in spec]


@pytest.mark.parametrize(
    "train_s, n_classes, fraction, sample_s, expected_n",
    [
        (1003.0, 3, 0.05, 4.0, 4),  # 50.15 s / 3 = 16.72 s -> 4 x 4 s
        (977.0, 4, 0.05, 3.0, 4),  # 48.85 s / 4 = 12.21 s -> 4 x 3 s
        (240.0, 1, 0.05, 4.0, 3),  # 12 s exactly: float 2.9999999 must still give 3
        (7.0, 2, 0.05, 1.0, 0),  # budget below one sample per class
        (12345.6, 7, 0.037, 2.5, 26),  # 456.79 / 7 = 65.26 -> 26 x 2.5 s
    ],
)
def test_budget_arithmetic_on_odd_budgets(train_s, n_classes, fraction, sample_s, expected_n):
    classes = [f"c{i}" for i in range(n_classes)]
    b = compute_budget(train_s, classes, fraction=fraction, sample_s=sample_s)
    assert b.samples_per_class == expected_n
    assert b.budget_s == pytest.approx(fraction * train_s)
    # Equal per class and below the budget by less than one sample per class.
    assert b.class_seconds == expected_n * sample_s
    assert b.total_seconds <= b.budget_s + 1e-9
    assert b.budget_s - b.total_seconds < n_classes * sample_s
    assert b.class_seconds <= b.class_budget_s + 1e-9 < b.class_seconds + sample_s
    assert Budget.from_dict(b.to_dict()) == b


def test_budget_without_classes_is_empty():
    b = compute_budget(100.0, [], fraction=0.05, sample_s=1.0)
    assert b.samples_per_class == 0 and b.total_seconds == 0


def test_derive_seed_is_stable_and_key_specific():
    assert derive_seed(0, "sample", "a_00001") == derive_seed(0, "sample", "a_00001")
    assert derive_seed(0, "sample", "a_00001") != derive_seed(0, "sample", "a_00002")
    assert derive_seed(0, "x") != derive_seed(1, "x")
    assert 0 <= derive_seed(123, "k") < 2**31


def test_grid_clips_fit_in_track():
    t = TrackInfo("t", "a", "train", 10.5)
    clips = grid_clips(t, 3.0)
    assert [c.offset_s for c in clips] == [0.0, 3.0, 6.0]
    shifted = grid_clips(t, 3.0, 1.6)
    assert [c.offset_s for c in shifted] == [1.6, 4.6]  # 7.6 + 3 > 10.5
    assert all(c.offset_s + c.duration_s <= 10.5 + 1e-9 for c in clips + shifted)


def _odd_corpus():
    spec = []
    # class a: 5 long train tracks; b: 3 train tracks; c: only validation/test tracks.
    for i in range(5):
        spec.append((f"a{i}", "a", "train", 37.0 + i))
    for i in range(3):
        spec.append((f"b{i}", "b", "train", 23.3))
    spec += [("av", "a", "validation", 100.0), ("bt", "b", "test", 100.0), ("cv", "c", "validation", 50.0)]
    return _tracks(spec)


def test_plan_uses_training_split_only_without_replacement():
    tracks = _odd_corpus()
    plan = plan_generation(tracks, fraction=0.2, sample_s=2.0, clip_s=2.0, seed=3, all_labels={"a", "b", "c"})
    train_s = sum(t.duration_s for t in tracks if t.split == "train")
    assert plan.budget.train_seconds == pytest.approx(train_s)
    assert plan.budget.classes == ("a", "b")
    assert "c" in plan.excluded and "empty class" in plan.excluded["c"]
    n = plan.budget.samples_per_class
    assert n == math.floor(0.2 * train_s / 2 / 2.0)
    train_ids = {t.track_id for t in tracks if t.split == "train"}
    for label in ("a", "b"):
        items = [it for it in plan.items if it.label == label]
        assert len(items) == n
        clips = [(it.clip.track_id, it.clip.offset_s) for it in items]
        assert len(set(clips)) == n, "drawn with replacement"
        assert all(it.clip.track_id in train_ids and it.clip.label == label for it in items)
        assert all(it.clip.reuse_round == 0 for it in items)
    keys = [it.key for it in plan.items]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert Plan.from_dict(plan.to_dict()) == plan


def test_draw_is_seeded_and_class_independent():
    tracks = _odd_corpus()
    kw = dict(fraction=0.2, sample_s=2.0, clip_s=2.0, on_shortage="error")
    p1 = plan_generation(tracks, seed=3, **kw)
    p2 = plan_generation(tracks, seed=3, **kw)
    p3 = plan_generation(tracks, seed=4, **kw)
    assert p1 == p2
    assert [it.clip for it in p1.items] != [it.clip for it in p3.items]
    # Dropping class b does not change class a's draw (per-class seeding), only the count.
    only_a = [t for t in tracks if t.label != "b"]
    pa = plan_generation(only_a, seed=3, **kw)
    a1 = [it.clip for it in p1.items if it.label == "a"]
    a2 = [it.clip for it in pa.items if it.label == "a"]
    assert a2[: len(a1)] == a1 or a1[: len(a2)] == a2


def test_shortage_error_names_class_and_counts():
    tracks = _tracks([("a0", "a", "train", 100.0), ("b0", "b", "train", 5.0)])
    with pytest.raises(ParamsError) as exc:
        plan_generation(tracks, fraction=0.5, sample_s=2.0, clip_s=2.0, seed=0, on_shortage="error")
    msg = str(exc.value)
    assert "generate.on_shortage" in msg and "'b'" in msg
    assert "2 training clips" in msg and "13 are needed" in msg


def test_shortage_reuse_draws_again_at_other_offsets():
    tracks = _tracks([("a0", "a", "train", 100.0), ("b0", "b", "train", 5.0)])
    plan = plan_generation(tracks, fraction=0.5, sample_s=2.0, clip_s=2.0, seed=0, on_shortage="reuse")
    b_items = [it for it in plan.items if it.label == "b"]
    assert len(b_items) == plan.budget.samples_per_class == 13
    first = [it.clip for it in b_items if it.clip.reuse_round == 0]
    assert len(first) == 2 and len({c.offset_s for c in first}) == 2
    reused = [it.clip for it in b_items if it.clip.reuse_round > 0]
    assert len(reused) == 11
    assert all(c.track_id == "b0" and c.offset_s + c.duration_s <= 5.0 + 1e-9 for c in reused)
    # Round 1 uses a shifted grid: offsets not on the original 0, 2 grid.
    r1 = [c.offset_s for c in reused if c.reuse_round == 1]
    assert r1 and all(o not in (0.0, 2.0) for o in r1)


def test_reuse_without_any_clip_still_fails():
    with pytest.raises(ParamsError):
        draw_clips(_tracks([("x", "a", "train", 1.0)]), 2, clip_s=2.0, seed=0, label="a", on_shortage="reuse")


def test_class_with_only_short_tracks_is_excluded():
    tracks = _tracks([("a0", "a", "train", 100.0), ("b0", "b", "train", 1.0)])
    plan = plan_generation(tracks, fraction=0.1, sample_s=2.0, clip_s=2.0, seed=0)
    assert plan.budget.classes == ("a",)
    assert "shorter than one clip" in plan.excluded["b"]
    # The whole training duration is still the reference for the budget.
    assert plan.budget.budget_s == pytest.approx(0.1 * 101.0)


def test_text_mode_draws_no_clips():
    plan = plan_generation(_odd_corpus(), fraction=0.2, sample_s=2.0, clip_s=None, seed=0)
    assert plan.items and all(it.clip is None for it in plan.items)


def test_records_roundtrip_and_validate():
    c = ClipRef("t", "a", 1.0, 2.0, 1)
    assert ClipRef.from_dict(c.to_dict()) == c
    t = TrackInfo("t", "a", "train", 3.0)
    assert TrackInfo.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError):
        TrackInfo("t", "", "train", 3.0)
    with pytest.raises(ValueError):
        ClipRef("t", "a", -1.0, 2.0)
    assert sample_key("Activated Pleasant", 7) == "activated-pleasant_00007"

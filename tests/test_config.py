"""Typed params loading: unknown keys, wrong types and ranges are errors naming the key path."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mgdata.config import ShardConfig, check, from_dict, load_section, to_dict
from mgdata.errors import ParamsError
from mgdata.splits import assign_splits, split_counts


@dataclass(frozen=True)
class Inner:
    lo: float = 0.0
    hi: float = 1.0

    def __post_init__(self):
        check(self.lo < self.hi, "hi", f"expected hi > lo ({self.lo})")


@dataclass(frozen=True)
class Section:
    seed: int = 0
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    ratio: float | None = None
    tempo_bpm: tuple[float, float] = (60.0, 120.0)
    programs: list[int] = field(default_factory=lambda: [0, 1])
    inner: Inner = field(default_factory=Inner)
    scenarios: dict[str, Inner] = field(default_factory=dict)


def test_defaults_and_values():
    cfg = from_dict(Section, {"seed": 3, "tempo_bpm": [70, 90], "inner": {"hi": 2}, "scenarios": {"a": {}}}, "s")
    assert cfg.seed == 3 and cfg.tempo_bpm == (70.0, 90.0) and cfg.inner.hi == 2.0
    assert cfg.scenarios["a"] == Inner()
    assert to_dict(cfg)["tempo_bpm"] == [70.0, 90.0]


@pytest.mark.parametrize(
    "data, key, words",
    [
        ({"sed": 1}, "s.sed", "unknown key"),
        ({"seed": "1"}, "s.seed", "integer"),
        ({"seed": True}, "s.seed", "integer"),
        ({"mode": "c"}, "s.mode", "one of"),
        ({"tempo_bpm": [60]}, "s.tempo_bpm", "2 items"),
        ({"tempo_bpm": [60, "x"]}, "s.tempo_bpm[1]", "number"),
        ({"programs": [0, 1.5]}, "s.programs[1]", "integer"),
        ({"inner": {"lo": 2, "hi": 1}}, "s.inner.hi", "hi > lo"),
        ({"inner": {"x": 1}}, "s.inner.x", "unknown key"),
        ({"scenarios": {"n": {"lo": 5}}}, "s.scenarios.n.hi", "hi > lo"),
        ({"ratio": "a"}, "s.ratio", "expected"),
    ],
)
def test_errors_name_key_path(data, key, words):
    with pytest.raises(ParamsError) as exc:
        from_dict(Section, data, "s")
    assert exc.value.key == key
    assert words in str(exc.value)


def test_load_section_and_shard_caps(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("shards:\n  max_samples: 0\n")
    with pytest.raises(ParamsError, match=r"shards\.max_samples"):
        load_section(p, "shards", ShardConfig)
    p.write_text("other: {}\n")
    assert load_section(p, "shards", ShardConfig) == ShardConfig()
    with pytest.raises(ParamsError, match="not found"):
        load_section(tmp_path / "missing.yaml", "shards", ShardConfig)


def test_split_assignment_is_deterministic_and_disjoint():
    ids = [f"t{i}" for i in range(63)]
    a = assign_splits(ids, seed=1)
    assert a == assign_splits(list(reversed(ids)), seed=1)
    assert a != assign_splits(ids, seed=2)
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "validation", "test")}
    assert counts == split_counts(63, {"train": 0.8, "validation": 0.1, "test": 0.1})
    assert sum(counts.values()) == 63 and min(counts.values()) >= 6
    assert split_counts(3, {"train": 0.8, "validation": 0.1, "test": 0.1}) == {"train": 1, "validation": 1, "test": 1}

"""mgdata.labels.fields: one home for the tag -> quadrant rule and the label fields records carry."""

import polars as pl
import pytest

from mgdata.errors import InputError
from mgdata.labels import TrackLabels, label_fields, quadrant_of_tags, quadrants_of, relabel_tracks


def test_quadrant_rule_is_the_relabel_rule_first_mapped_tag_wins():
    tags = ["synthetic", "mood/theme---sad", "happy"]
    table = relabel_tracks([{"track_id": "t", "tags": tags}]).table
    assert quadrant_of_tags(tags) == table["quadrant"][0] == "deactivated_unpleasant"
    assert quadrant_of_tags(["energetic-but-unmapped"]) is None and quadrant_of_tags(None) is None


def test_old_import_paths_are_the_same_objects():
    from mgdata.corpus.moods import quadrant_of_tags as corpus_rule
    from mgdata.embed.build import label_fields as embed_fields
    from mgdata.embed.build import quadrant_of_tags as embed_rule
    from mgdata.generate.build import quadrants_of as generate_quadrants
    from mgdata.stems.records import TrackLabels as StemsLabels

    assert corpus_rule is embed_rule is quadrant_of_tags
    assert embed_fields is label_fields and generate_quadrants is quadrants_of and StemsLabels is TrackLabels


def test_track_labels_from_meta_fallbacks_and_validation():
    assert TrackLabels.from_meta({"mood_tags": ["calm"], "style": "bach"}) == TrackLabels(
        "deactivated_pleasant", ("calm",), "bach"
    )
    # The json's own quadrant wins over the given one, which wins over the mapping.
    assert TrackLabels.from_meta({"quadrant": "q", "mood": ["sad"]}, quadrant="given").quadrant == "q"
    assert TrackLabels.from_meta({"mood": ["sad"]}, quadrant="given").quadrant == "given"
    assert label_fields({"track_id": 3, "split": "train"})["track_id"] == "3"
    with pytest.raises(InputError, match="manifest.parquet.*mood must be a list"):
        TrackLabels.from_dict({"mood": "sad"}, where="manifest.parquet")


def test_quadrants_of_a_labels_table():
    df = pl.DataFrame({"track_id": ["a", "b", None], "quadrant": ["activated_pleasant", None, "x"]})
    assert quadrants_of(df) == {"a": "activated_pleasant"}
    assert quadrants_of(pl.DataFrame({"track_id": ["a"]})) == {}

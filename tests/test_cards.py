"""Dataset cards render from artifact.json: every template, no unfilled placeholder, valid front matter."""

import pytest
import yaml

from mgdata.cards import CARD_DIR, render_card
from mgdata.cli import main as cli_main
from mgdata.errors import MgdataError

TEMPLATES = sorted(p.stem for p in CARD_DIR.glob("*.md") if p.stem != "README")


def test_all_artifact_types_have_a_card():
    assert set(TEMPLATES) == {"corpus", "stems", "generate", "embed", "tokens"}


@pytest.mark.parametrize("template", TEMPLATES)
def test_card_renders_with_provenance_and_loader_config(corpus_artifact, template):
    text = render_card(corpus_artifact / "mix", template, name="demo")
    assert "$" not in text
    front = yaml.safe_load(text.split("---")[1])
    assert front["pretty_name"] == "demo"
    splits = {d["split"]: d["path"] for d in front["configs"][0]["data_files"]}
    assert splits == {"train": "train-*.tar", "validation": "validation-*.tar", "test": "test-*.tar"}
    assert "synthetic test audio (CC0)" in text  # the licence comes from the provenance


def test_unknown_placeholder_and_missing_template(corpus_artifact, tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("$nope\n")
    with pytest.raises(MgdataError, match=r"\$nope"):
        render_card(corpus_artifact / "mix", bad)
    with pytest.raises(MgdataError, match="no such card template"):
        render_card(corpus_artifact / "mix", "missing")


def test_card_cli_writes_file(corpus_artifact, tmp_path):
    out = tmp_path / "README.md"
    assert cli_main(["card", str(corpus_artifact / "stems"), "--template", "stems", "--out", str(out)]) == 0
    assert "mgdata stem pairs" in out.read_text()

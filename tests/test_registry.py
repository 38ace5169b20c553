"""The one lazy registry mechanism: names listed without imports, unknown names named with the closest."""

import sys

import pytest

from mgdata.embed.base import EMBEDDERS, get_embedder
from mgdata.errors import ParamsError
from mgdata.generate.base import GENERATORS, get_generator
from mgdata.registry import Registry


def test_lookup_is_lazy_and_unknown_names_suggest_the_closest():
    reg = Registry("widget", "x.widgets", {"json_dump": "json:dumps", "ghost": "mgdata_no_such_module:Thing"})
    assert reg.names() == ["ghost", "json_dump"] and "ghost" in reg and len(reg) == 2
    assert "mgdata_no_such_module" not in sys.modules  # listed, never imported
    import json

    assert reg.load("json_dump") is json.dumps
    with pytest.raises(ParamsError, match=r"x\.widgets: unknown widget 'json_dumb' \(did you mean 'json_dump'\?\)"):
        reg.load("json_dumb")
    with pytest.raises(ModuleNotFoundError):
        reg.load("ghost")  # imported only now
    with pytest.raises(ValueError, match="module:attribute"):
        reg.register("bad", "no_colon")


def test_embedders_and_generators_use_the_registry():
    assert isinstance(EMBEDDERS, Registry) and isinstance(GENERATORS, Registry)
    assert {"logmel", "musicfeat", "hf"} <= set(EMBEDDERS) and {"resynth", "musicgen"} <= set(GENERATORS)
    with pytest.raises(ParamsError, match=r"embed\.embedders: unknown embedder 'logmell' \(did you mean 'logmel'\?\)"):
        get_embedder("logmell")
    with pytest.raises(ParamsError, match=r"generate\.generators: unknown generator 'resynt'.*'resynth'"):
        get_generator("resynt", None)


def test_params_sections_and_cli_modules_use_the_registry():
    from mgdata.cli import CLI_MODULES, build_parser
    from mgdata.params import SECTIONS, section_class

    assert isinstance(SECTIONS, Registry) and isinstance(CLI_MODULES, Registry)
    assert section_class("decision").__name__ == "DecisionConfig"
    # A section is its own params key: the error names it, not a parent key.
    with pytest.raises(ParamsError, match=r"decison: unknown section \(did you mean 'decision'\?\)"):
        section_class("decison")
    # Every registered CLI module contributes its subcommands.
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"decision", "tag", "stages", "classify", "hub"} <= set(sub.choices)

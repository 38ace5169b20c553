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

"""The SIMD dispatch pin (mgdata.dispatch): what the libraries really run, in tests and in a fresh process."""

import os
import subprocess
import sys

import pytest

from mgdata import dispatch


def test_the_test_process_runs_at_the_pinned_level():
    """pytest loads mgdata.dispatch first (-p in pyproject), so numpy, OpenBLAS and torch report the level."""
    name = os.environ.get(dispatch.ENV_VAR, dispatch.DEFAULT_LEVEL)
    if name == "native":
        pytest.skip("MGDATA_DISPATCH=native: nothing is pinned")
    assert dispatch.check() == [], dispatch.effective()


@pytest.mark.parametrize("name", ["avx2", "sse42"])
def test_a_fresh_process_reports_the_level_it_was_asked_for(name):
    code = "import mgdata, mgdata.dispatch as d, json; print(json.dumps(d.effective()))"
    env = {k: v for k, v in os.environ.items() if k not in dispatch.LEVELS["avx2"]} | {dispatch.ENV_VAR: name}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    got = __import__("json").loads(out.stdout)
    assert {k: got[k] for k in dispatch.EXPECTED[name]} == dispatch.EXPECTED[name]


def test_importing_numpy_before_mgdata_warns():
    code = "import numpy, warnings; warnings.simplefilter('always'); import mgdata"
    env = {k: v for k, v in os.environ.items() if k not in dispatch.LEVELS["avx2"] and k != dispatch.ENV_VAR}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "numpy was imported before mgdata" in out.stderr


def test_unknown_level_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "avx3")
    with pytest.raises(ValueError, match=r"MGDATA_DISPATCH='avx3': expected one of"):
        dispatch.level()


def test_levels_pin_the_same_variables():
    """A variable pinned at one level and not another would leak the machine's default into the other."""
    assert set(dispatch.LEVELS["avx2"]) == set(dispatch.LEVELS["sse42"])
    assert dispatch.pinned_env("avx2")["OPENBLAS_CORETYPE"] == "Haswell"


def test_nothing_is_pinned_off_x86_64(monkeypatch):
    """numpy refuses x86 feature names it does not know at import: on ARM the pin must not set them."""
    for key in [*dispatch.LEVELS["avx2"], dispatch.ENV_VAR]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(dispatch.platform, "machine", lambda: "aarch64")
    assert dispatch.pin() == "native"
    assert not any(key in os.environ for key in dispatch.LEVELS["avx2"])
    assert os.environ[dispatch.ENV_VAR] == "native"

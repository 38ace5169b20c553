"""Shared fixtures: small synthetic artifacts built in code (no committed audio)."""

import os

import pytest

import mgdata  # noqa: F401 - pins the SIMD dispatch (mgdata.dispatch) before any test loads numpy or torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def corpus_artifact(tmp_path_factory):
    """A 6-track corpus-layout artifact (mix, stems, manifest) from mgdata.testing."""
    from mgdata.testing import make_corpus_artifact

    return make_corpus_artifact(tmp_path_factory.mktemp("corpus"))

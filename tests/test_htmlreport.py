"""mgdata report: a self-contained static site; checked as files and in a real headless Chromium."""

import json
import re
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig
from mgdata.htmlreport import ReportConfig, build_report
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter, Sample, encode_json
from mgdata.testing import make_corpus_artifact, tone


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    make_corpus_artifact(root / "data" / "corpus", n_tracks=4, n_stems=2, duration_s=3.0, sr=16000)
    prov = Provenance(builder="generate", source="test", source_version="1", licence="CC0", seed=0, params_hash="x")
    with ArtifactWriter(
        root / "data/generate/resynth", fingerprint="fp", provenance=prov, shards=ShardConfig(max_samples=8)
    ) as w:
        for i, label in enumerate(["calm", "happy"]):
            meta = {
                "key": f"g{i}",
                "label": label,
                "split": "train",
                "source_key": "synth-000",
                "offset_s": 0.5,
                "duration_s": 1.0,
                "generator": "resynth",
                "provenance": prov.sample_dict(),
            }
            w.write(
                "train",
                Sample(
                    f"g{i}",
                    {"flac": encode_flac(tone(220.0 * (i + 1), 1.0, 16000), 16000), "json": encode_json(meta)},
                    seconds=1.0,
                    labels=(label,),
                ),
            )
    renders = root / "data/decision/s0.5-k16/renders"
    renders.mkdir(parents=True)
    sf.write(renders / "pair0_mix.flac", tone(330.0, 1.0, 16000), 16000)
    (root / "plots/relabel").mkdir(parents=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure(figsize=(2, 2))
    plt.bar([0, 1], [1, 2])
    plt.savefig(root / "plots/relabel/hours_per_class.png")
    plt.close()
    (root / "plots/classify").mkdir(parents=True)
    (root / "plots/classify/quadrant-logmel.md").write_text(
        "# quadrant\n\n| run | f1 |\n|---|---|\n| baseline | 0.5 |\n"
    )
    (root / "metrics").mkdir()
    (root / "metrics/corpus.json").write_text(json.dumps({"tracks": 4, "hours": 0.01}))
    out = root / "reports"
    res = build_report(root, out, cfg=ReportConfig(samples_per_class=1))
    return root, res


def _links(index: Path) -> list[str]:
    return re.findall(r'(?:src|href)="([^"#][^"]*)"', index.read_text())


def test_site_is_self_contained_and_every_link_resolves(project):
    root, res = project
    links = _links(res.index)
    assert links, "the page links its media"
    for link in links:
        if link.startswith("data:"):
            continue
        assert not re.match(r"^(https?:)?//|^/", link), f"non-relative link {link}"
        assert (res.index.parent / link).is_file(), f"broken link {link}"
    text = res.index.read_text()
    for heading in (
        "Artifacts",
        "corpus mixes",
        "generated (resynth)",
        "decision renders",
        "Results tables",
        "Plots",
        "Metrics",
    ):
        assert heading in text
    assert res.artifacts == 3  # corpus mix, corpus stems, generate
    assert res.clips == text.count("<audio")
    media = res.index.parent / "media"
    # One clip per class; each generated clip (2 classes) next to its source clip; the decision render.
    for name in (
        "gen-resynth-g0",
        "gen-resynth-g0-source",
        "gen-resynth-g1",
        "gen-resynth-g1-source",
        "decision-s0.5-k16-pair0_mix",
    ):
        assert (media / f"{name}.flac").is_file() and (media / f"{name}.png").is_file(), name


def test_generated_clip_sits_next_to_its_source(project):
    root, res = project
    src = res.index.parent / "media" / "gen-resynth-g0-source.flac"
    audio, sr = sf.read(src)
    assert sr == 16000 and len(audio) == 16000  # offset 0.5 s, 1.0 s cut from the source track


def test_missing_data_folder_is_one_clear_error(tmp_path):
    from mgdata.errors import InputError

    with pytest.raises(InputError, match="no data folder"):
        build_report(tmp_path, tmp_path / "out")


@pytest.mark.slow
def test_report_opens_in_headless_chromium(project):
    chromium = shutil.which("chromium")
    driver_bin = shutil.which("chromedriver")
    if not (chromium and driver_bin):
        pytest.fail("chromium and chromium-driver are required (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _, res = project
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    try:
        driver.set_window_size(1280, 2000)
        driver.get(res.index.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
        )
        assert images and all(done and w > 0 for _, done, w in images), images
        audio_state = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const els = Array.from(document.querySelectorAll('audio'));
            const wait = el => new Promise(r => {
              if (el.readyState >= 1) return r();
              el.addEventListener('loadedmetadata', r); el.addEventListener('error', r); el.load(); });
            Promise.all(els.map(wait)).then(() => done(els.map(e => [e.getAttribute('src'), e.duration,
                                                                     e.error ? e.error.code : 0])));
        """)
        assert audio_state and all(d > 0 and err == 0 for _, d, err in audio_state), audio_state
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        driver.save_screenshot(str(res.index.parent / "screenshot.png"))
    finally:
        driver.quit()

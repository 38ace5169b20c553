"""``mgdata report``: a static HTML site to look at and listen to what the pipeline built.

The site is self-contained (relative links only, no CDN, no script): open
``reports/index.html`` in a browser from disk. It shows, as their artifacts
exist:

* every artifact (``artifact.json`` under the data root): builder, source,
  version, seed, licence, samples and hours per split, labels;
* audio players with a few samples per class: corpus mixes, stem windows,
  every generator next to the source clip it came from, decision renders;
  each with a waveform and a spectrogram thumbnail;
* every PNG plot under ``plots/`` and every results table (``*.md``) there, and ``docs/decision_grid.md``;
* the metrics of every stage (``metrics/**/*.json``), one small table per file.

Audio is copied as FLAC (the bytes stored in the shards, or cut from them) so
what you hear is what was built.
"""

from __future__ import annotations

import html
import json
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.errors import InputError

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #446}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.clips{display:flex;flex-wrap:wrap;gap:12px}.clip{border:1px solid #ddd;padding:8px;width:360px;font-size:85%}
.clip img{width:100%;display:block}audio{width:100%}.prov{color:#666;font-size:80%}
.pair{display:flex;gap:8px}.pair .clip{width:280px}img.plot{max-width:100%;border:1px solid #eee}"""


@dataclass(frozen=True)
class ReportConfig:
    """Section ``report``.

    Attributes:
        samples_per_class: Clips shown per class (label) and artifact.
        max_clip_s: Clips longer than this are cut (keeps the site small).
        thumbnails: Draw a waveform and spectrogram PNG per clip.
    """

    samples_per_class: int = 2
    max_clip_s: float = 10.0
    thumbnails: bool = True

    def __post_init__(self):
        from mgdata.config import check

        check(self.samples_per_class >= 1, "samples_per_class", "expected an integer >= 1")
        check(self.max_clip_s > 0, "max_clip_s", "expected seconds > 0")


@dataclass
class SiteResult:
    """What :func:`build_report` wrote."""

    index: Path
    artifacts: int
    clips: int
    images: int
    tables: int


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _artifacts(data_root: Path) -> list[Path]:
    return sorted(p.parent for p in data_root.rglob("artifact.json"))


def _label_of(meta: dict[str, Any]) -> str:
    for key in ("quadrant", "label", "style"):
        if meta.get(key):
            return str(meta[key])
    return "unlabelled"


def _pick(artifact: Path, per_class: int, *, split: str | None = None) -> Iterator[tuple[str, dict, dict]]:
    """Up to ``per_class`` samples per label: (label, json, sample) in artifact order."""
    from mgdata.store import decode_json, iter_samples

    seen: dict[str, int] = defaultdict(int)
    for sample in iter_samples(artifact, split=split):
        if "json" not in sample:
            continue
        meta = decode_json(sample["json"])  # any artifact kind: shown as a dict, never written back
        label = _label_of(meta)
        if seen[label] >= per_class:
            continue
        seen[label] += 1
        yield label, meta, sample


class _Site:
    """Writes media files and collects HTML fragments."""

    def __init__(self, out: Path, cfg: ReportConfig):
        self.out = out
        self.cfg = cfg
        self.clips = 0
        self.images = 0
        (out / "media").mkdir(parents=True, exist_ok=True)

    def clip(self, name: str, audio: np.ndarray, sr: int, caption: str) -> str:
        """Write ``media/<name>.flac`` (+ thumbnail) and return the clip's HTML."""
        from mgdata.audio import encode_flac

        n = int(self.cfg.max_clip_s * sr)
        audio = np.asarray(audio, dtype=np.float32)[:n]
        rel = f"media/{name}.flac"
        (self.out / rel).write_bytes(encode_flac(audio, sr))
        self.clips += 1
        img = ""
        if self.cfg.thumbnails:
            img_rel = f"media/{name}.png"
            _thumbnail(audio, sr, self.out / img_rel)
            self.images += 1
            img = f'<img src="{img_rel}" alt="waveform and spectrogram of {_esc(name)}">'
        return (
            f'<div class="clip"><b>{_esc(name)}</b>{img}<audio controls preload="metadata" src="{rel}"></audio>'
            f"<div>{caption}</div></div>"
        )

    def copy_image(self, src: Path, rel: str) -> str:
        dst = self.out / "media" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        self.images += 1
        return f'<figure><img class="plot" src="media/{_esc(rel)}" alt="{_esc(rel)}"><figcaption>{_esc(rel)}</figcaption></figure>'


def _thumbnail(audio: np.ndarray, sr: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(3.6, 1.8), dpi=80, sharex=True)
    t = np.arange(len(audio)) / sr
    ax1.plot(t, audio, linewidth=0.3, color="#335")
    ax1.set_axis_off()
    if len(audio) >= 512:
        ax2.specgram(audio, NFFT=512, Fs=sr, noverlap=256, cmap="magma")
    ax2.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1, 0, 0.05)
    fig.savefig(path)
    plt.close(fig)


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    from mgdata.audio import decode_audio

    return decode_audio(data)


def _caption(meta: dict[str, Any], keys: tuple[str, ...]) -> str:
    parts = [f"{k}: {_esc(meta[k])}" for k in keys if meta.get(k) not in (None, "", [])]
    return "<br>".join(parts)


def _artifact_table(arts: list[Path], root: Path) -> str:
    from mgdata.store import read_artifact_info

    rows = [
        "<table><tr><th>artifact</th><th>builder</th><th>source (version)</th><th>seed</th>"
        "<th>samples per split</th><th>hours</th><th>licence</th></tr>"
    ]
    for a in arts:
        info = read_artifact_info(a)
        prov = info.get("provenance") or {}
        splits = info.get("splits") or {}
        counts = ", ".join(
            f"{s} {v.get('samples', v) if isinstance(v, dict) else v}" for s, v in sorted(splits.items())
        )
        secs = sum(float(v.get("seconds", 0)) for v in splits.values() if isinstance(v, dict))
        rows.append(
            f"<tr><td>{_esc(a.relative_to(root))}</td><td>{_esc(prov.get('builder', ''))}</td>"
            f"<td>{_esc(prov.get('source', ''))} ({_esc(prov.get('source_version', ''))})</td>"
            f"<td>{_esc(prov.get('seed', ''))}</td><td>{_esc(counts)}</td><td>{secs / 3600:.3f}</td>"
            f"<td class=prov>{_esc(str(prov.get('licence', ''))[:160])}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _section_corpus(site: _Site, art: Path) -> str:
    clips = []
    for label, meta, s in _pick(art, site.cfg.samples_per_class):
        audio, sr = _decode(s["flac"])
        clips.append(
            site.clip(
                f"corpus-{s['__key__']}",
                audio,
                sr,
                f"class <b>{_esc(label)}</b><br>"
                + _caption(meta, ("style", "mode", "tempo_bpm", "split", "instruments")),
            )
        )
    return f'<div class="clips">{"".join(clips)}</div>'


def _section_stems(site: _Site, art: Path) -> str:
    """Stem windows of the first window of a few tracks, side by side."""
    from mgdata.store import decode_json, iter_samples

    groups: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for s in iter_samples(art):
        if "json" not in s:
            continue
        meta = decode_json(s["json"])  # stem-window or pair jsons: shown as a dict, never written back
        group = f"{meta.get('track_id')}-w{meta.get('window_index')}"
        if len(groups) >= site.cfg.samples_per_class * 2 and group not in groups:
            break
        groups[group].append((meta, s))
    out = []
    for group, items in groups.items():
        clips = []
        for meta, s in items[:4]:
            for member in ("flac", "a.flac", "b.flac"):
                if member in s:
                    audio, sr = _decode(s[member])
                    name = f"stems-{s['__key__']}-{member.split('.')[0]}"
                    clips.append(
                        site.clip(
                            name,
                            audio,
                            sr,
                            _caption(meta, ("stem", "instrument", "stem_a", "stem_b", "start_s", "split")),
                        )
                    )
        out.append(f"<h4>{_esc(group)}</h4><div class='pair'>{''.join(clips)}</div>")
    return "".join(out)


def _source_audio(corpus: Path | None, meta: dict[str, Any]) -> tuple[np.ndarray, int] | None:
    """The source clip a generated sample came from (same offset and length), when it can be found."""
    key = meta.get("source_key")  # the corpus track the clip was cut from (source or prime)
    if corpus is None or not key:
        return None
    from mgdata.store import iter_samples

    for s in iter_samples(corpus):
        if s["__key__"] == key and "flac" in s:
            audio, sr = _decode(s["flac"])
            off = float(meta.get("offset_s") or 0.0)
            dur = float(meta.get("duration_s") or 0.0)
            return audio[int(off * sr) : int((off + dur) * sr)], sr
    return None


def _section_generated(site: _Site, art: Path, corpus: Path | None) -> str:
    pairs = []
    for label, meta, s in _pick(art, site.cfg.samples_per_class):
        audio, sr = _decode(s["flac"])
        gen = site.clip(
            f"gen-{art.name}-{s['__key__']}",
            audio,
            sr,
            f"generated, class <b>{_esc(label)}</b><br>" + _caption(meta, ("generator", "seed", "prompt")),
        )
        src = _source_audio(corpus, meta)
        src_html = (
            site.clip(f"gen-{art.name}-{s['__key__']}-source", src[0], src[1], "its source clip")
            if src is not None and len(src[0])
            else ""
        )
        pairs.append(f"<div class='pair'>{gen}{src_html}</div>")
    return "".join(pairs)


def _section_renders(site: _Site, data_root: Path) -> str:
    clips = []
    for f in sorted(data_root.glob("decision/*/renders/*.flac"))[: 4 * site.cfg.samples_per_class]:
        import soundfile as sf

        audio, sr = sf.read(f, dtype="float32", always_2d=False)
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        clips.append(site.clip(f"decision-{f.parent.parent.name}-{f.stem}", audio, sr, _esc(f.relative_to(data_root))))
    return f'<div class="clips">{"".join(clips)}</div>' if clips else ""


def _md_table_to_html(text: str) -> str:
    """Markdown pipe tables (and headings/paragraphs) -> HTML; enough for the results tables."""
    out, rows = [], []

    def flush():
        if rows:
            body = [r for r in rows if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in body]
            html_rows = [f"<tr>{''.join(f'<th>{_esc(c)}</th>' for c in cells[0])}</tr>"]
            html_rows += [f"<tr>{''.join(f'<td>{_esc(c)}</td>' for c in r)}</tr>" for r in cells[1:]]
            out.append(f"<table>{''.join(html_rows)}</table>")
            rows.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            rows.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = min(6, len(line) - len(line.lstrip("#")) + 2)
            out.append(f"<h{level}>{_esc(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_esc(line)}</p>")
    flush()
    return "\n".join(out)


def _metrics_tables(metrics_root: Path) -> str:
    from mgdata.compare import flatten

    out = []
    for f in sorted(metrics_root.rglob("*.json")):
        if f.relative_to(metrics_root).as_posix() == "report.json":
            continue  # the report stage's own metrics: reading them would make the site depend on its last run
        try:
            flat = flatten(json.loads(f.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(str(f), "metrics file is not valid JSON") from None
        cells = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in sorted(flat.items()))
        out.append(f"<details><summary>{_esc(f.relative_to(metrics_root))}</summary><table>{cells}</table></details>")
    return "\n".join(out)


def _listen_sections(site: _Site, data_root: Path, by_rel: dict[str, Path]) -> list[tuple[str, str]]:
    """The listening sections, in page order: corpus mixes, stem windows, each generator, decision renders."""
    sections: list[tuple[str, str]] = []
    corpus = by_rel.get("corpus/mix")
    if corpus is not None:
        sections.append(("Listen: corpus mixes (per class)", _section_corpus(site, corpus)))
    if "stems" in by_rel:
        sections.append(("Listen: stem windows", _section_stems(site, by_rel["stems"])))
    for rel, art in by_rel.items():
        if rel.startswith("generate/"):
            sections.append(
                (f"Listen: generated ({art.name}) next to its source", _section_generated(site, art, corpus))
            )
    renders = _section_renders(site, data_root)
    if renders:
        sections.append(("Listen: decision renders (B' from A)", renders))
    return sections


#: Committed results tables outside ``plots/`` the site also shows (when present), relative to the project root:
#: the decision grid (tools/decision_grid.py; a grid run, not a default stage, writes it).
DOC_TABLES = ("docs/decision_grid.md",)


def _plots(site: _Site, plot_root: Path) -> tuple[list[str], list[str]]:
    """The committed plots: every PNG (copied into the site) and every markdown results table (as HTML)."""
    figures, tables = [], []
    if plot_root.is_dir():
        for f in sorted(plot_root.rglob("*.png")):
            figures.append(site.copy_image(f, f.relative_to(plot_root).as_posix()))
        for f in sorted(plot_root.rglob("*.md")):
            tables.append(f"<h3>{_esc(f.relative_to(plot_root))}</h3>{_md_table_to_html(f.read_text())}")
    return figures, tables


def build_report(
    root: str | Path = ".",
    out_dir: str | Path = "reports",
    *,
    cfg: ReportConfig | None = None,
    data: str = "data",
    metrics: str = "metrics",
    plots: str = "plots",
) -> SiteResult:
    """Build the static site.

    Args:
        root: The project folder holding ``data/``, ``metrics/`` and ``plots/``.
        out_dir: Output folder (replaced): ``index.html`` and ``media/``.
        cfg: Section ``report``.
        data, metrics, plots: Folder names under ``root``.

    Raises:
        InputError: ``root`` has no ``data/`` folder, or a metrics file is not JSON.
    """
    cfg = cfg or ReportConfig()
    root = Path(root)
    data_root = root / data
    if not data_root.is_dir():
        raise InputError(str(data_root), "no data folder: run `dvc repro` first")
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    site = _Site(out, cfg)
    arts = _artifacts(data_root)
    by_rel = {a.relative_to(data_root).as_posix(): a for a in arts}
    sections: list[tuple[str, str]] = [("Artifacts", _artifact_table(arts, data_root))]
    sections += _listen_sections(site, data_root, by_rel)
    figures, tables = _plots(site, root / plots)
    tables += [
        f"<h3>{_esc(rel)}</h3>{_md_table_to_html((root / rel).read_text())}"
        for rel in DOC_TABLES
        if (root / rel).is_file()
    ]
    if tables:
        sections.append(("Results tables", "\n".join(tables)))
    if figures:
        sections.append(("Plots", "\n".join(figures)))
    if (root / metrics).is_dir():
        sections.append(("Metrics", _metrics_tables(root / metrics)))
    toc = "".join(f'<li><a href="#s{i}">{_esc(t)}</a></li>' for i, (t, _) in enumerate(sections))
    body = "".join(f'<h2 id="s{i}">{_esc(t)}</h2>\n{h}\n' for i, (t, h) in enumerate(sections))
    page = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>mgdata report</title>"
        f'<link rel=icon href="data:,"><style>{CSS}</style></head><body><h1>mgdata report</h1>'
        f"<p>Built from <code>{_esc(data)}/</code>, <code>{_esc(plots)}/</code> and <code>{_esc(metrics)}/</code>"
        f" by <code>mgdata report</code>. Every clip is the audio stored in the artifacts.</p>"
        f"<ul>{toc}</ul>{body}</body></html>\n"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return SiteResult(index=index, artifacts=len(arts), clips=site.clips, images=site.images, tables=len(tables))


def run_stage(ctx) -> Any:
    """Stage ``report``: the site from the current workspace into ``--out``."""
    from mgdata.pipeline import StageOutcome

    res = build_report(".", ctx.args.out, cfg=ctx.section("report"))
    for k in ("artifacts", "clips", "images", "tables"):
        ctx.report.set(k, getattr(res, k))
    return StageOutcome(
        summary=f"{res.index} ({res.artifacts} artifacts, {res.clips} clips, {res.images} images)",
        inputs=res.artifacts,
        outputs=res.clips + res.images,
    )


def _cmd_report(args) -> int:
    res = build_report(args.root, args.out, cfg=ReportConfig(samples_per_class=args.per_class))
    print(
        f"report: {res.index} ({res.artifacts} artifacts, {res.clips} clips, {res.images} images, {res.tables} tables)"
    )
    return 0


def register_cli(sub) -> None:
    """Add ``mgdata report``."""
    p = sub.add_parser(
        "report",
        help="build a static HTML site to look at and listen to the artifacts",
        description=__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("--root", default=".", help="project folder with data/, metrics/, plots/ (default: .)")
    p.add_argument("--out", default="reports", help="output folder, replaced (default: reports)")
    p.add_argument("--per-class", type=int, default=2, help="clips per class and artifact (default: 2)")
    p.set_defaults(func=_cmd_report)

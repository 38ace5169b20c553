"""Dataset cards that load as they are: ``mgdata card ARTIFACT [--out FILE] [--template NAME]``.

A card is a Hugging Face dataset card (YAML header + Markdown) built with
``huggingface_hub``'s :class:`~huggingface_hub.DatasetCardData` and
:class:`~huggingface_hub.DatasetCard` from a Jinja template shipped in
``mgdata/cards/templates/`` (package data, so an installed mgdata renders cards).

The header makes ``datasets.load_dataset(<folder or repo>)`` work with no
arguments: ``configs`` point each split at its shards only (``{split}-*.tar``, so
the ``.tar.idx`` sidecars never match), and ``dataset_info.features`` declares
every member: audio as ``binary`` (``datasets`` would otherwise decode it with
torchcodec), ``json`` as ``json``, ``npy`` as a list of its dtype (read from the
first sample). The template is chosen from the artifact's kind (the provenance
``builder`` in ``artifact.json``); an explicit template of another kind is an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from mgdata.errors import InputError, MgdataError
from mgdata.store import decode_json, decode_npy, iter_samples, list_shards, read_artifact_info

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
# Artifact kind (provenance builder, before any "/") -> template. "testing" is the corpus layout from mgdata.testing.
KIND_TEMPLATES = {
    "corpus": "corpus",
    "testing": "corpus",
    "stems": "stems",
    "generate": "generate",
    "embed": "embed",
    "tokens": "tokens",
    "jamendo": "jamendo",
}
TEMPLATES = tuple(sorted(set(KIND_TEMPLATES.values())))
TASKS = {
    "corpus": ["audio-classification"],
    "stems": ["audio-to-audio"],
    "generate": ["audio-classification"],
    "embed": ["feature-extraction"],
    "tokens": ["audio-to-audio"],
    "jamendo": ["audio-classification"],
}
TAGS = {
    "corpus": ["chorales", "multitrack", "emotion"],
    "stems": ["multitrack", "stems"],
    "generate": ["generated-audio", "data-augmentation"],
    "embed": ["embeddings"],
    "tokens": ["tokens", "stems"],
    "jamendo": ["mtg-jamendo", "emotion"],
}
AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg", "opus", "m4a", "aac")
NAMES = {
    "corpus": "chorale corpus",
    "stems": "stem windows",
    "generate": "generated audio",
    "embed": "embeddings",
    "tokens": "token sequences",
    "jamendo": "MTG-Jamendo clips",
}
# Licence text -> SPDX id when the whole licence is that one licence; anything else is `other` with a name.
SPDX = (("(cc0)", "cc0-1.0"), ("cc0-1.0", "cc0-1.0"), ("cc-by-4.0", "cc-by-4.0"), ("mit", "mit"))
UNITS = (
    ("_s", "s"),
    ("_hz", "Hz"),
    ("sample_rate", "Hz"),
    ("_bpm", "BPM"),
    ("_dbfs", "dBFS"),
    ("_db", "dB"),
    ("_bytes", "bytes"),
)


def artifact_kind(info: dict[str, Any]) -> str:
    """The kind of an artifact: its provenance builder up to the first ``/`` (``generate/resynth`` -> ``generate``)."""
    return str((info.get("provenance") or {}).get("builder", "")).split("/", 1)[0]


def template_for(info: dict[str, Any], template: str | None, *, where: str) -> str:
    """The template name for an artifact; ``template`` (a name) must match the artifact's kind.

    Raises:
        InputError: Unknown kind without a template, unknown template, or a template of another kind.
    """
    kind = artifact_kind(info)
    expected = KIND_TEMPLATES.get(kind)
    if template is None:
        if expected is None:
            raise InputError(where, f"no card template for artifact kind {kind!r} (known: {sorted(KIND_TEMPLATES)})")
        return expected
    if template not in TEMPLATES:
        raise InputError(where, f"no such card template {template!r} (available: {', '.join(TEMPLATES)})")
    if expected is not None and template != expected:
        raise InputError(
            where,
            f"template {template!r} does not match the artifact kind {kind!r} "
            f"(builder {info['provenance'].get('builder')!r}): use --template {expected}",
        )
    return template


def _first_sample(artifact_dir: Path) -> dict[str, Any] | None:
    shards = list_shards(artifact_dir)
    return next(iter(iter_samples(shards[:1])), None) if shards else None


def member_feature(member: str, sample: dict[str, Any] | None) -> Any:
    """The ``dataset_info.features`` dtype of one member, as YAML (``binary``, ``json``, ``{list: int16}`` ...)."""
    ext = member.rsplit(".", 1)[-1]
    if ext in ("json", "jsn"):
        return "json"
    if ext in ("txt", "text"):
        return "string"
    if ext in ("cls", "cls2", "index", "id"):
        return "int64"
    if ext == "npy" and sample is not None and member in sample:
        arr = decode_npy(sample[member])
        dtype: Any = arr.dtype.name
        for _ in range(arr.ndim):
            dtype = {"list": dtype}
        return dtype
    return "binary"  # audio (decoded with soundfile, not torchcodec) and anything unknown stay raw bytes


def features_yaml(members: list[str], sample: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``dataset_info.features`` for the webdataset loader: ``__key__``, ``__url__`` and every member."""
    feats: list[dict[str, Any]] = [{"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}]
    for m in members:
        f = member_feature(m, sample)
        feats.append({"name": m, "list": f["list"]} if isinstance(f, dict) else {"name": m, "dtype": f})
    return feats


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` samples."""
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "n>10M"


def license_fields(licence: str, kind: str) -> dict[str, str]:
    """``license`` (+ ``license_name``/``license_link`` when ``other``) from the provenance licence text."""
    text = licence.strip().lower()
    if ";" not in text:
        for needle, spdx in SPDX:
            if text.endswith(needle) or text == spdx:
                return {"license": spdx}
    # The licence text is in the card's Licensing section: the link points there.
    return {"license": "other", "license_name": f"mgdata-{kind}-sources", "license_link": "README.md#licensing"}


def _unit(name: str) -> str:
    for suffix, unit in UNITS:
        if name.endswith(suffix) or name == suffix:
            return unit
    return ""


def _type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return "null" if v is None else type(v).__name__


def _example(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    text = text if len(text) <= 60 else text[:57] + "..."
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def _citations(kind: str, info: dict[str, Any]) -> list[dict[str, str]]:
    refs = yaml.safe_load((TEMPLATE_DIR / "citations.yaml").read_text())
    prov = info.get("provenance") or {}
    blob = json.dumps(prov).lower()
    keys = []
    if kind in ("corpus", "testing") or "music21" in blob:
        keys += ["music21", "mtg_jamendo"]
    if "jamendo" in blob or kind == "jamendo":
        keys.append("mtg_jamendo")
    if "moisesdb" in blob:
        keys.append("moisesdb")
    if "musicgen" in blob:
        keys.append("musicgen")
    if "resynth" in blob:
        keys.append("ddsp")
    return [refs[k] for k in dict.fromkeys(keys)]


def _member_rows(members: list[str], audio: list[str], sample: dict[str, Any] | None, sr: Any) -> list[dict[str, str]]:
    """One row (name, type, content) per sample member for the card's member table."""
    rows = []
    for m in members:
        f = member_feature(m, sample)
        if m in audio:
            rows.append(
                {
                    "name": m,
                    "type": "binary",
                    "content": f"{m.rsplit('.', 1)[-1].upper()} audio"
                    + (f", {sr} Hz" if sr else "")
                    + "; decode with soundfile",
                }
            )
        elif f == "json":
            rows.append({"name": m, "type": "json", "content": "metadata and labels (fields below)"})
        elif isinstance(f, dict):
            depth, inner = 0, f
            while isinstance(inner, dict):
                depth, inner = depth + 1, inner["list"]
            rows.append(
                {
                    "name": m,
                    "type": f"{depth}-d {inner} array",
                    "content": f"NumPy `.npy` array, {inner}, {depth} dimension(s)",
                }
            )
        else:
            rows.append({"name": m, "type": str(f), "content": "raw bytes"})
    return rows


def _split_rows(info: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The splits of ``artifact.json`` in train/validation/test order, and one table row per split."""
    order = {"train": 0, "validation": 1, "test": 2}
    splits = dict(sorted((info.get("splits") or {}).items(), key=lambda kv: (order.get(kv[0], 3), kv[0])))
    rows = [
        {"name": s, "samples": v["samples"], "hours": v["seconds"] / 3600, "shards": len(v["shards"])}
        for s, v in splits.items()
    ]
    return splits, rows


def _extra_json(extra: dict[str, Any]) -> tuple[str, bool]:
    """The provenance ``extra`` block as indented JSON, cut to 60 lines (and whether it was cut)."""
    text = json.dumps(extra, indent=1, sort_keys=True, ensure_ascii=False) if extra else ""
    lines = text.splitlines()
    if len(lines) > 60:
        return "\n".join(lines[:60] + ["..."]), True
    return text, False


def card_context(artifact_dir: str | Path, *, name: str | None = None, load_path: str | None = None) -> dict[str, Any]:
    """Everything a template uses, from ``artifact.json`` and the first sample.

    The first sample's json is read as a plain dict on purpose: the card lists whatever
    fields the artifact's json holds, for every kind of artifact.
    """
    artifact_dir = Path(artifact_dir)
    info = read_artifact_info(artifact_dir)
    prov = dict(info.get("provenance") or {})
    kind = artifact_kind(info)
    tkind = KIND_TEMPLATES.get(kind, kind)
    members = list(info.get("members") or [])
    sample = _first_sample(artifact_dir)
    meta = decode_json(sample["json"]) if sample and "json" in sample else {}
    audio = [m for m in members if m.rsplit(".", 1)[-1] in AUDIO_EXTENSIONS]
    sr = meta.get("sample_rate")
    member_rows = _member_rows(members, audio, sample, sr)
    json_rows = [
        {"name": k, "type": _type_name(v), "unit": _unit(k), "example": _example(v)} for k, v in sorted(meta.items())
    ]
    splits, split_rows = _split_rows(info)
    extra_json, extra_truncated = _extra_json(prov.pop("extra", None) or {})
    top = sorted((info.get("labels") or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    lic = license_fields(str(prov.get("licence", "")), tkind)
    pretty = name or f"mgdata {NAMES.get(tkind, tkind)}: {artifact_dir.name}"
    return {
        "kind": tkind,
        "pretty_name": pretty,
        "prov": prov,
        "fingerprint": info.get("fingerprint", ""),
        "samples": info.get("samples", 0),
        "hours": info.get("seconds", 0.0) / 3600,
        "splits": list(splits),
        "split_rows": split_rows,
        "members": members,
        "member_rows": member_rows,
        "json_rows": json_rows,
        "json_fields": sorted(meta),
        "has_json": "json" in members,
        "audio_member": audio[0] if audio else "",
        "side_files": [{"name": k, **v} for k, v in sorted((info.get("files") or {}).items())],
        "top_labels": top,
        "extra_json": extra_json,
        "extra_truncated": extra_truncated,
        "license_id": lic["license"],
        "license_name": lic.get("license_name", ""),
        "license": lic,
        "citations": _citations(kind, info),
        "first_split": next(iter(splits), "train"),
        "load_path": load_path or str(artifact_dir),
        "features": features_yaml(members, sample),
    }


def card_data(ctx: dict[str, Any]):
    """The :class:`~huggingface_hub.DatasetCardData` (YAML header) of a card context."""
    from huggingface_hub import DatasetCardData

    configs = (
        [
            {
                "config_name": "default",
                "default": True,
                "data_files": [{"split": s, "path": f"{s}-*.tar"} for s in ctx["splits"]],
            }
        ]
        if ctx["splits"]
        else None
    )
    return DatasetCardData(
        pretty_name=ctx["pretty_name"],
        **ctx["license"],
        task_categories=TASKS.get(ctx["kind"], []),
        tags=["music", "audio", "webdataset", "mgdata", *TAGS.get(ctx["kind"], [])],
        size_categories=[size_category(ctx["samples"])],
        configs=configs,
        dataset_info={"features": ctx["features"]},
    )


def render_card(
    artifact_dir: str | Path, template: str | None = None, *, name: str | None = None, load_path: str | None = None
) -> str:
    """Render the dataset card of ``artifact_dir``.

    Args:
        artifact_dir: A complete artifact (has ``artifact.json``).
        template: Template name (``corpus``, ``stems``, ``generate``, ``embed``,
            ``tokens``, ``jamendo``); default: from the artifact's kind. A name
            that does not match the kind is an error.
        name: Pretty name (default: from the kind and the folder name).
        load_path: What the loading snippet passes to ``load_dataset`` (a repo
            id when publishing; default: ``artifact_dir`` as given).

    Returns:
        The card text (``README.md``).

    Raises:
        MgdataError: Incomplete artifact, wrong or unknown template, or a template error.
    """
    import jinja2
    from huggingface_hub import DatasetCard

    artifact_dir = Path(artifact_dir)
    info = read_artifact_info(artifact_dir)
    tname = template_for(info, template, where=str(artifact_dir))
    ctx = card_context(artifact_dir, name=name, load_path=load_path)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    try:
        text = env.get_template(f"{tname}.md").render(card_data=card_data(ctx).to_yaml(), **ctx)
    except jinja2.TemplateError as exc:
        raise MgdataError(f"{TEMPLATE_DIR / (tname + '.md')}: {type(exc).__name__}: {exc}") from None
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    card = DatasetCard(text)  # parses the header back: a malformed header fails here, not on the Hub
    return str(card).rstrip("\n") + "\n"


def register_cli(subparsers) -> None:
    """``mgdata card ARTIFACT [--out FILE] [--template NAME] [--name TEXT]``."""
    p = subparsers.add_parser(
        "card",
        help="render the dataset card (README.md) of an artifact",
        description="Render a Hugging Face dataset card from ARTIFACT/artifact.json: YAML header (pretty_name, "
        "license, task_categories, tags, size_categories, configs, dataset_info.features) so that "
        "datasets.load_dataset(folder) works as is, and sections on fields, splits, provenance, licensing, "
        "citations and loading. The template follows the artifact's kind; --template must match it.",
    )
    p.add_argument("artifact", help="artifact directory, e.g. data/corpus/mix")
    p.add_argument("--template", choices=TEMPLATES, help="template name (default: from the artifact's kind)")
    p.add_argument("--name", help="pretty name (default: derived from the kind and folder name)")
    p.add_argument("--load-path", help="path or repo id shown in the loading snippet (default: ARTIFACT as given)")
    p.add_argument("--out", help="write here (e.g. ARTIFACT/README.md) instead of printing")

    def run(args) -> int:
        text = render_card(args.artifact, args.template, name=args.name, load_path=args.load_path)
        if args.out:
            Path(args.out).write_text(text)
        else:
            print(text, end="")
        return 0

    p.set_defaults(func=run)

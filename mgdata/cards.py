"""Dataset cards: fill a ``dataset_cards/`` template from an artifact's ``artifact.json``.

The Hub publishing stage uploads an artifact directory with the rendered card as
its ``README.md``. Templates use ``$name`` placeholders (``string.Template``), so
YAML front matter needs no escaping; an unknown placeholder is an error.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from mgdata.errors import MgdataError
from mgdata.store import read_artifact_info

CARD_DIR = Path(__file__).resolve().parents[1] / "dataset_cards"


def card_fields(artifact_dir: str | Path, *, name: str | None = None) -> dict[str, str]:
    """The placeholder values of an artifact, from its ``artifact.json``.

    Args:
        artifact_dir: A complete artifact (has ``artifact.json``).
        name: Pretty name; defaults to the directory path.

    Returns:
        ``$name`` -> text: provenance fields, counts, a Markdown split table, the
        ``configs`` YAML for the ``datasets`` webdataset loader and the most
        frequent labels.
    """
    artifact_dir = Path(artifact_dir)
    info = read_artifact_info(artifact_dir)
    prov: dict[str, Any] = info["provenance"]
    splits: dict[str, Any] = info["splits"]
    rows = [f"| {s} | {v['samples']} | {v['seconds'] / 3600:.3f} | {len(v['shards'])} |" for s, v in splits.items()]
    data_files = "\n".join(f"  - split: {s}\n    path: \"{s}-*.tar\"" for s in splits)
    top = sorted(info.get("labels", {}).items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    return {
        "name": name or str(artifact_dir),
        "builder": prov["builder"],
        "source": prov["source"],
        "source_version": prov["source_version"],
        "licence": prov["licence"],
        "seed": str(prov["seed"]),
        "params_hash": prov["params_hash"],
        "mgdata_version": prov.get("mgdata_version", ""),
        "fingerprint": info["fingerprint"],
        "members": ", ".join(f"`{m}`" for m in info["members"]),
        "samples": str(info["samples"]),
        "hours": f"{info['seconds'] / 3600:.3f}",
        "split_table": "| split | samples | hours | shards |\n|---|---|---|---|\n" + "\n".join(rows),
        "configs": f"configs:\n- config_name: default\n  data_files:\n{data_files}" if splits else "",
        "labels": "\n".join(f"- `{label}`: {n}" for label, n in top) or "(none)",
    }


def render_card(artifact_dir: str | Path, template: str | Path, *, name: str | None = None) -> str:
    """Render ``template`` (a path, or a card name in ``dataset_cards/``) for ``artifact_dir``.

    Raises:
        MgdataError: Missing template, incomplete artifact, or a placeholder the
            artifact cannot fill (names it).
    """
    path = Path(template)
    if not path.exists():
        path = CARD_DIR / f"{template}.md"
    if not path.exists():
        raise MgdataError(f"{template}: no such card template (looked in {CARD_DIR})")
    try:
        return string.Template(path.read_text()).substitute(card_fields(artifact_dir, name=name))
    except KeyError as exc:
        raise MgdataError(f"{path}: unknown placeholder ${exc.args[0]}") from None


def register_cli(subparsers) -> None:
    """``mgdata card ARTIFACT --template NAME [--out README.md]``."""
    p = subparsers.add_parser(
        "card", help="render a dataset card for an artifact",
        description="Fill a dataset_cards/ template from ARTIFACT/artifact.json (provenance, licence, counts, "
        "the webdataset configs) and print it or write it to --out.")
    p.add_argument("artifact", help="artifact directory, e.g. data/corpus/mix")
    p.add_argument("--template", required=True, help="card name in dataset_cards/ (corpus, stems, generate, "
                   "embed, tokens) or a template path")
    p.add_argument("--name", help="pretty name (default: the artifact path)")
    p.add_argument("--out", help="write here instead of printing")

    def run(args) -> int:
        text = render_card(args.artifact, args.template, name=args.name)
        if args.out:
            Path(args.out).write_text(text)
        else:
            print(text, end="")
        return 0

    p.set_defaults(func=run)

"""Section ``hub``: published artifacts pulled as pipeline inputs (stage ``hub_pull@<name>``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mgdata.config import check


@dataclass(frozen=True)
class HubInput:
    """One pulled artifact: ``data/hub/<name>`` is ``uri`` at its pinned revision."""

    name: str = ""
    uri: str = ""

    def __post_init__(self):
        check(bool(re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.name)), "name", "expected a lowercase name of [a-z0-9_-]")
        from mgdata.errors import InputError
        from mgdata.hub.pull import parse_hub_uri

        try:
            hub = parse_hub_uri(self.uri)
        except InputError as exc:
            check(False, "uri", exc.message)
        check(
            hub.revision != "main" or "@" in self.uri,
            "uri",
            "pin a revision (hf://datasets/ORG/NAME@TAG_OR_SHA): a moving branch would not rerun the stage",
        )


@dataclass(frozen=True)
class HubConfig:
    """Section ``hub``.

    Attributes:
        inputs: Artifacts to pull; each becomes ``data/hub/<name>`` (read it like a local artifact,
            e.g. as an ``embed.artifacts`` path). Empty by default: the default pipeline is offline.
    """

    inputs: list[HubInput] = field(default_factory=list)

    def __post_init__(self):
        names = [i.name for i in self.inputs]
        check(len(names) == len(set(names)), "inputs", "expected distinct names")

    def input(self, name: str) -> HubInput:
        """The input called ``name``."""
        for i in self.inputs:
            if i.name == name:
                return i
        check(False, "inputs", f"no input named {name!r} (known: {', '.join(n.name for n in self.inputs)})")
        raise AssertionError  # unreachable: check raised

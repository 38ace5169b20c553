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
        retries: Retries of one Hub call after a transient failure (5xx, 429, timeout, reset).
        backoff_s: Wait before the first retry, doubled for each further one.
        max_backoff_s: Cap of one wait, and of a 429's ``Retry-After``.
        timeout_s: Connect/read timeout of one HTTP request.
    """

    inputs: list[HubInput] = field(default_factory=list)
    retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0

    def __post_init__(self):
        names = [i.name for i in self.inputs]
        check(len(names) == len(set(names)), "inputs", "expected distinct names")
        check(isinstance(self.retries, int) and 0 <= self.retries <= 20, "retries", "expected an int in 0..20")
        for key in ("backoff_s", "max_backoff_s", "timeout_s"):
            value = getattr(self, key)
            check(isinstance(value, int | float) and value >= 0, key, "expected a number >= 0")
        check(self.timeout_s > 0, "timeout_s", "expected a number > 0")

    def policy(self):
        """The :class:`~mgdata.hub.net.RetryPolicy` these settings describe."""
        from mgdata.hub.net import RetryPolicy

        return RetryPolicy(
            retries=self.retries, backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s, timeout_s=self.timeout_s
        )

    def input(self, name: str) -> HubInput:
        """The input called ``name``."""
        for i in self.inputs:
            if i.name == name:
                return i
        check(False, "inputs", f"no input named {name!r} (known: {', '.join(n.name for n in self.inputs)})")
        raise AssertionError  # unreachable: check raised

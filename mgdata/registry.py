"""One lazy registry mechanism for every name -> implementation map.

Embedders, generators, token encoders, params sections and CLI subcommand
modules are all :class:`Registry` instances; stage entry points (``StageSpec.run``)
resolve through :func:`import_target`, the same lazy import.

A registry maps a name to ``"module:attribute"``; the module is imported only
when the name is looked up, so listing names (``--help``, params validation)
never imports torch or transformers. An unknown name raises a
:class:`~mgdata.errors.ParamsError` naming the params key, the known names and
the closest match.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any

from mgdata.errors import ParamsError


def import_target(target: str) -> Any:
    """Import ``"module:attribute"`` and return the attribute (the one lazy import of every registry)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def closest(name: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest known name, or ``""`` when nothing is close."""
    match = difflib.get_close_matches(str(name), sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


class Registry:
    """Name -> lazily imported implementation.

    Args:
        kind: What the entries are (``"embedder"``), for error messages.
        key: The params key that names an entry (``"embed.embedders"``), for error messages; ``None``
            when the name is itself the key (a params section).
        entries: Initial ``name -> "module:attribute"`` entries.
    """

    def __init__(self, kind: str, key: str | None, entries: dict[str, str] | None = None):
        self.kind = kind
        self.key = key
        self._entries: dict[str, str] = {}
        for name, target in (entries or {}).items():
            self.register(name, target)

    def register(self, name: str, target: str) -> None:
        """Add ``name`` -> ``"module:attribute"`` (a user plugin may call this before a stage runs)."""
        module, sep, attr = target.partition(":")
        if not (module and sep and attr):
            raise ValueError(f"{self.kind} {name!r}: target must be 'module:attribute', got {target!r}")
        self._entries[name] = target

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, name: str) -> str:
        return self._entries[name]

    def __setitem__(self, name: str, target: str) -> None:
        self.register(name, target)

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The ``"module:attribute"`` of ``name``, or ``default`` (mapping protocol, e.g. for monkeypatch)."""
        return self._entries.get(name, default)

    def check(self, name: str) -> None:
        """Raise :class:`ParamsError` (with the closest known name) unless ``name`` is registered."""
        if name not in self._entries:
            known = f"{closest(name, self.names())}; known: {', '.join(self.names())}"
            if self.key is None:
                raise ParamsError(name, f"unknown {self.kind}{known}")
            raise ParamsError(self.key, f"unknown {self.kind} {name!r}{known}")

    def load(self, name: str) -> Any:
        """The registered attribute (class or function), importing its module now."""
        self.check(name)
        return import_target(self._entries[name])

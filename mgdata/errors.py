"""Error types shared by every mgdata module.

Each error names what is wrong (a params key, a file, a sample key) so a user can
fix it without reading a traceback.
"""

from __future__ import annotations


def _rebuild(cls: type, args: tuple, state: dict) -> MgdataError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class MgdataError(Exception):
    """Base class of every error mgdata raises on purpose."""

    def __reduce__(self):
        # Rebuild from args + attributes, not by calling __init__: subclasses take other arguments than the one
        # formatted message in ``args``, and process pool and Ray workers pickle errors back to the parent.
        return (_rebuild, (self.__class__, self.args, dict(self.__dict__)))


class ParamsError(MgdataError, ValueError):
    """A params.yaml value is unknown, of the wrong type or out of range.

    Args:
        key: Dotted key path, e.g. ``"corpus.tempo_bpm[1]"``.
        message: What was expected.
    """

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"params: {key}: {message}")


class InputError(MgdataError):
    """An input file or sample is missing, unreadable or malformed.

    Args:
        where: The file path or sample key at fault.
        message: What is wrong with it.
    """

    def __init__(self, where: str, message: str):
        self.where = str(where)
        self.message = message
        super().__init__(f"{where}: {message}")


class DependencyError(MgdataError):
    """A renderer, model or package is missing; the message says how to get it."""


class ShardError(MgdataError):
    """A shard is corrupt, truncated or does not match its index."""

    def __init__(self, shard: str, message: str):
        self.shard = str(shard)
        super().__init__(f"{shard}: {message}")

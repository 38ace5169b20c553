"""Typed params loading: params.yaml sections become frozen dataclasses.

A section is a ``@dataclass(frozen=True)`` with a default for every field.
:func:`from_dict` builds it from the YAML mapping, checking every key and type
against the type hints; ``__post_init__`` checks ranges with :func:`check`. Any
problem raises :class:`~mgdata.errors.ParamsError` naming the full key path
(``corpus.tempo_bpm[1]``) before a stage does any work.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from mgdata.errors import ParamsError

T = TypeVar("T")

MiB = 1024 * 1024


def check(cond: bool, key: str, expected: str) -> None:
    """Raise ParamsError(key, expected) unless ``cond`` holds.

    Used in config ``__post_init__`` methods; ``key`` is relative to the
    dataclass and the loader prefixes the section path.
    """
    if not cond:
        raise ParamsError(key, expected)


def _join(path: str, key: str) -> str:
    if not path:
        return key
    return f"{path}{key}" if key.startswith("[") else f"{path}.{key}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


#: Scalar types params accept: (the check a value must pass, what the error says was expected, conversion).
#: bool is checked apart from int and float: YAML's true/false must not pass as 1/0.
_SCALARS: dict[type, tuple[Callable[[Any], bool], str, Callable[[Any], Any] | None]] = {
    bool: (lambda v: isinstance(v, bool), "true or false", None),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", None),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number", float),
    str: (lambda v: isinstance(v, str), "a string", None),
    Path: (lambda v: isinstance(v, str), "a path string", Path),
}


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Convert ``value`` to type ``tp`` or raise ParamsError naming ``path``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(args, value, path)
    if origin is Literal:
        if value not in args:
            raise ParamsError(path, f"expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin in (list, tuple) or tp in (list, tuple):
        return _convert_sequence(tp, origin, args, value, path)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ParamsError(path, f"expected a mapping, got {value!r}")
        key_tp, val_tp = args if args else (Any, Any)
        return {_convert(key_tp, k, path): _convert(val_tp, v, _join(path, str(k))) for k, v in value.items()}
    scalar = _SCALARS.get(tp) if isinstance(tp, type) else None
    if scalar is not None:
        ok, expected, conv = scalar
        if not ok(value):
            raise ParamsError(path, f"expected {expected}, got {value!r}")
        return conv(value) if conv is not None else value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ParamsError(path, f"expected {_type_name(tp)}, got {value!r}")
    return value


def _convert_union(args: tuple[Any, ...], value: Any, path: str) -> Any:
    """The first member of ``Union[args]`` that converts ``value``."""
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:  # Optional[X]: X's own error names the deeper key
        return _convert(options[0], value, path)
    for arg in options:
        try:
            return _convert(arg, value, path)
        except ParamsError:
            continue
    raise ParamsError(path, f"expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")


def _convert_sequence(tp: Any, origin: Any, args: tuple[Any, ...], value: Any, path: str) -> list | tuple:
    """A list or tuple (fixed-length ``tuple[A, B]`` or ``tuple[X, ...]``), each item converted."""
    if not isinstance(value, (list, tuple)):
        raise ParamsError(path, f"expected a list, got {value!r}")
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise ParamsError(path, f"expected a list of {len(args)} items, got {len(value)}")
        items = [_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
    else:
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if (origin is tuple or tp is tuple) else items


def from_dict(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build the dataclass ``cls`` from a mapping, validating keys and types.

    Args:
        cls: A dataclass type whose fields all have defaults or are given.
        data: The mapping (``None`` means all defaults).
        path: Key path of ``data`` in params.yaml, used in error messages.

    Returns:
        An instance of ``cls``.

    Raises:
        ParamsError: Unknown key, wrong type, missing required key or a failed
            ``check`` in ``__post_init__``; the message names the full key path.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ParamsError(path or cls.__name__, f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        from mgdata.registry import closest

        raise ParamsError(
            _join(path, str(unknown[0])),
            f"unknown key{closest(str(unknown[0]), list(fields))} (known keys: {', '.join(sorted(fields))})",
        )
    kwargs = {}
    for name in fields:
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _join(path, name))
    try:
        return cls(**kwargs)
    except ParamsError as exc:
        raise ParamsError(_join(path, exc.key), exc.message) from None
    except TypeError as exc:  # a required field without default is missing
        raise ParamsError(path or cls.__name__, str(exc)) from None


def to_dict(cfg: Any) -> Any:
    """Plain JSON/YAML-safe dict of a config dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def read_params(params_path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml as a mapping, with a clear error if it is missing or not a mapping."""
    params_path = Path(params_path)
    if not params_path.exists():
        raise ParamsError(str(params_path), "params file not found")
    try:
        with open(params_path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{params_path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(params_path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(where, f"YAML syntax error: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(str(params_path), f"cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise ParamsError(str(params_path), "expected a mapping of sections at the top level")
    return data


def load_section(params_path: str | Path, name: str, cls: type[T]) -> T:
    """Load and validate section ``name`` of params.yaml as ``cls``.

    A missing section yields the defaults of ``cls``.
    """
    return from_dict(cls, read_params(params_path).get(name), name)


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    """Section ``shards``: caps shared by every shard writer."""

    max_samples: int = 256
    max_bytes: int = 256 * MiB

    def __post_init__(self):
        check(self.max_samples >= 1, "max_samples", "expected an integer >= 1")
        check(self.max_bytes >= 4096, "max_bytes", "expected at least 4096 bytes")

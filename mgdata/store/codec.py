"""Byte codecs of the shard store: sample keys, deterministic JSON, ``.npy``, fingerprints, file hashes.

Everything here is a pure function of its arguments (no clock, no paths in the
output), so the same inputs always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.config import to_dict
from mgdata.errors import InputError, MgdataError

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MEMBER_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


class DecodeError(InputError, ValueError):
    """A member's bytes do not decode (not UTF-8 JSON, not a ``.npy``).

    Both an :class:`~mgdata.errors.MgdataError` (stages print one line naming
    ``where``) and a ``ValueError`` (code that already catches ``ValueError``
    keeps working).
    """


def make_key(*parts: Any) -> str:
    """Join parts into a valid sample key: lowercase, ``[a-z0-9_-]``, no dots."""
    text = "_".join(str(p) for p in parts).lower()
    text = re.sub(r"[^a-z0-9_-]+", "-", text).strip("-_")
    if not text:
        raise MgdataError(f"cannot make a sample key from {parts!r}")
    return text if text[0].isalnum() else "k" + text


def encode_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, compact, UTF-8)."""
    return json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_json(data: bytes, where: str = "json member") -> Any:
    """Inverse of :func:`encode_json`.

    Args:
        data: The bytes.
        where: What to name in the error (a shard and sample key, a file).

    Raises:
        DecodeError: ``data`` is not UTF-8 JSON (one line naming ``where``).
    """
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(where, f"not valid UTF-8 JSON ({type(exc).__name__}: {_first_line(exc)})") from None


def record_from_json(
    cls: type,
    data: Any,
    *,
    what: str,
    optional: tuple[str, ...] | set[str] | frozenset[str] = (),
    extras: tuple[str, ...] | set[str] | frozenset[str] = (),
    where: str | None = None,
    key_field: str = "key",
) -> Any:
    """Build a sample-json dataclass record (``cls(**fields)``) from a decoded json, with one-line errors.

    The one reader of every sample json (:class:`JsonRecord` calls it). Fields absent from
    ``data`` are an error unless listed in ``optional`` (they then take their dataclass default,
    else ``None``); ``provenance`` defaults to ``{}``. Keys that are not fields are an error
    (a misspelt or stale json is caught, not silently dropped) unless listed in ``extras``
    (known envelope keys, dropped) or the record sets ``tolerates_extras``. The record's own
    validation (``__post_init__`` raising ValueError/TypeError) becomes an InputError.

    Args:
        cls: The dataclass.
        data: The decoded json.
        what: What kind of json it is (``"stem-window"``), named in errors.
        optional: Fields that may be absent.
        extras: Non-field keys that are tolerated and dropped.
        where: Where the json came from (``shard: sample key``); default the json's ``key_field``.
        key_field: The field naming the sample (``key``; ``track_id`` for corpus jsons).

    Raises:
        InputError: A required field is missing, a key is unknown or the record rejects a value
            (one line naming ``where`` and the fields).
    """
    import dataclasses

    where = where or (str(data.get(key_field, "?")) if isinstance(data, Mapping) else "?")
    if not isinstance(data, Mapping):
        raise InputError(where, f"bad metadata: {what} json is not an object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    missing = [n for n in fields if n not in data and n not in optional and n != "provenance"]
    if missing:
        raise InputError(where, f"bad metadata: {what} json lacks {', '.join(missing)}")
    unknown = sorted(k for k in data if k not in fields and k not in extras)
    if unknown and not getattr(cls, "tolerates_extras", False):
        raise InputError(where, f"bad metadata: {what} json has unknown field(s) {', '.join(map(str, unknown))}")
    kw = {n: data[n] if n in data else _default(f) for n, f in fields.items()}
    if "provenance" in kw:
        kw["provenance"] = dict(data.get("provenance") or {})
    try:
        normalise = getattr(cls, "normalise_json", None)
        if normalise is not None:
            kw = normalise(kw)
        return cls(**kw)
    except (TypeError, ValueError) as exc:
        raise InputError(where, f"bad metadata: {what} json ({exc})") from None


def _default(f: Any) -> Any:
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


class JsonRecord:
    """Mixin of the dataclass records whose ``to_dict`` *is* a sample's json: one to_dict/from_dict for all.

    A record class sets (all optional, as plain class attributes):

    * ``json_what``: the name used in errors (``"stem-window"``);
    * ``json_optional``: fields that may be absent from a json (old shards, no source);
    * ``json_extras``: non-field keys tolerated and dropped on read (e.g. the ``provenance``
      envelope the corpus writes beside a record that has no provenance field);
    * ``json_omit_none``: fields left out of the json when ``None``;
    * ``json_key_field``: the field naming the sample in errors (default ``key``);
    * ``tolerates_extras``: read jsons with any unknown keys (default ``False``);
    * ``normalise_json(kw)``: a classmethod coercing decoded values before ``cls(**kw)``.

    Writing is ``encode_json(record.to_dict())`` (sorted keys), so a record and the dict it
    replaced give the same bytes.
    """

    json_what: str = "sample"
    json_optional: frozenset[str] = frozenset()
    json_extras: frozenset[str] = frozenset()
    json_omit_none: tuple[str, ...] = ()
    json_key_field: str = "key"

    def to_dict(self) -> dict[str, Any]:
        """The json dict (``dataclasses.asdict``, ``json_omit_none`` fields dropped when unset)."""
        import dataclasses

        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        for name in self.json_omit_none:
            if out[name] is None:
                del out[name]
        return out

    def to_json(self, **envelope: Any) -> bytes:
        """The json member bytes (``envelope`` keys, e.g. ``provenance``, added beside the fields)."""
        return encode_json({**self.to_dict(), **envelope})

    @classmethod
    def from_dict(cls, data: Any, *, where: str | None = None) -> Any:
        """Inverse of :meth:`to_dict` through :func:`record_from_json` (one-line errors)."""
        return record_from_json(
            cls,
            data,
            what=cls.json_what,
            optional=cls.json_optional,
            extras=cls.json_extras,
            where=where,
            key_field=cls.json_key_field,
        )

    @classmethod
    def from_json(cls, data: bytes, where: str = "json member") -> Any:
        """Decode json bytes into the record (errors name ``where``)."""
        return cls.from_dict(decode_json(data, where), where=where)

    @classmethod
    def from_sample(cls, sample: Mapping[str, Any], member: str = "json") -> Any:
        """The record of a sample dict from :func:`~mgdata.store.iter_samples` (errors name shard and key)."""
        return cls.from_dict(decode_sample_json(sample, member), where=sample_where(sample))

    @classmethod
    def from_sample_envelope(cls, sample: Mapping[str, Any], member: str = "json") -> tuple[Any, dict[str, Any]]:
        """:meth:`from_sample`, plus the envelope it carries (the ``json_extras`` keys present, e.g. provenance)."""
        data = decode_sample_json(sample, member)
        record = cls.from_dict(data, where=sample_where(sample))
        return record, {k: data[k] for k in cls.json_extras if k in data}


def sample_where(sample: Mapping[str, Any]) -> str:
    """``shard: sample key`` of a sample dict, for error messages."""
    return f"{sample.get('__shard__', '?')}: sample {sample.get('__key__', '?')}"


def decode_sample_json(sample: Mapping[str, Any], member: str = "json") -> Any:
    """Decode a sample's JSON member, naming the shard and key if it is corrupt.

    Args:
        sample: A sample dict from :func:`~mgdata.store.iter_samples`.
        member: The member name.
    """
    where = f"{sample.get('__shard__', '?')}: sample {sample.get('__key__', '?')} member {member}"
    if member not in sample:
        raise InputError(where, "missing")
    return decode_json(sample[member], where)


def encode_npy(arr: np.ndarray) -> bytes:
    """``.npy`` bytes of an array (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def decode_npy(data: bytes, where: str = "npy member") -> np.ndarray:
    """Inverse of :func:`encode_npy`.

    Raises:
        DecodeError: ``data`` is not a pickle-free ``.npy`` (one line naming ``where``).
    """
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise DecodeError(where, f"not a valid .npy ({_first_line(exc)})") from None


def canonical_json(obj: Any) -> bytes:
    """Canonical compact JSON bytes (sorted keys, ASCII): the input of content hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def fingerprint(*parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts`` (dataclasses, dicts, strings...)."""
    blob = json.dumps(to_dict(list(parts)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_json_file(path: str | Path) -> Any:
    """Parse a JSON file, or raise one line naming it.

    Raises:
        MgdataError: The file cannot be read, is not UTF-8 or is not valid JSON
            (truncated, edited).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
        return json.loads(text)
    except FileNotFoundError:
        raise MgdataError(f"{path}: no such file") from None
    except OSError as exc:
        raise MgdataError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MgdataError(f"{path}: corrupt or truncated JSON ({_first_line(exc)}); rebuild it") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__

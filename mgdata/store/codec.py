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


def record_from_json(cls: type, data: Any, *, what: str, optional: tuple[str, ...] | set[str] = ()) -> Any:
    """Build a sample-json dataclass record (``cls(**fields)``) from a decoded json, with one-line errors.

    Fields absent from ``data`` are an error unless listed in ``optional`` (they then take
    ``None``); ``provenance`` defaults to ``{}``; the record's own validation (``__post_init__``
    raising ValueError/TypeError) becomes an InputError naming the sample key.

    Raises:
        InputError: A required field is missing or the record rejects a value (names the key and ``what``).
    """
    import dataclasses

    key = str(data.get("key", "?")) if isinstance(data, Mapping) else "?"
    if not isinstance(data, Mapping):
        raise InputError(key, f"bad metadata: {what} json is not an object")
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names if n not in data and n not in optional and n != "provenance"]
    if missing:
        raise InputError(key, f"bad metadata: {what} json lacks {', '.join(missing)}")
    kw = {n: data.get(n) for n in names}
    if "provenance" in kw:
        kw["provenance"] = dict(data.get("provenance") or {})
    try:
        return cls(**kw)
    except (TypeError, ValueError) as exc:
        raise InputError(key, f"bad metadata: {what} json ({exc})") from None


def decode_sample_json(sample: dict[str, Any], member: str = "json") -> Any:
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

"""Read TensorFlow tensor-bundle checkpoints (``.index`` + ``.data-*``) without TensorFlow.

The MusiCNN weights ship in the ``musicnn`` wheel as TensorFlow 1 checkpoints. A
checkpoint is two files: the ``.index`` is a LevelDB-format table (SSTable) mapping
each variable name to a ``BundleEntryProto`` (dtype, shape, shard, offset, size,
masked CRC32C), and ``.data-00000-of-00001`` holds the raw little-endian tensors
back to back. Both formats are small and stable, so this module decodes them by
hand (varints and a few protobuf fields) instead of depending on TensorFlow or
protobuf, and checks every tensor's CRC32C before handing it out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mgdata.errors import InputError

# LevelDB table footer: two block handles padded to 40 bytes, then this magic number.
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER = 5  # compression-type byte + masked crc32c of the block

# TensorFlow DataType enum values (types.proto) that have a fixed-size numpy equivalent.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


# --------------------------------------------------------------------------- crc32c


@lru_cache(maxsize=1)
def _crc_table() -> np.ndarray:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table[i] = c
    return table


def _crc_raw(register: int, data: bytes) -> int:
    """Advance a raw CRC32C register over ``data`` byte by byte (for short inputs)."""
    table = _crc_table()
    for b in data:
        register = int(table[(register ^ b) & 0xFF]) ^ (register >> 8)
    return register


@lru_cache(maxsize=64)
def _zeros_operator(n: int) -> tuple[int, ...]:
    """Columns of the GF(2) matrix that advances a CRC register over ``n`` zero bytes."""
    table = _crc_table()
    regs = np.array([1 << j for j in range(32)], dtype=np.uint32)
    for _ in range(n):
        regs = table[regs & 0xFF] ^ (regs >> 8)
    return tuple(int(r) for r in regs)


def _apply(columns: tuple[int, ...], register: int) -> int:
    out = 0
    j = 0
    while register:
        if register & 1:
            out ^= columns[j]
        register >>= 1
        j += 1
    return out


def crc32c(data: bytes | memoryview | np.ndarray, *, n_chunks: int = 1024) -> int:
    """CRC-32C (Castagnoli) of ``data``.

    A byte-at-a-time Python loop takes seconds on a 9 MB checkpoint, so long inputs are
    cut into ``n_chunks`` equal chunks whose raw CRC registers advance together in numpy,
    then chained: the register update is linear over GF(2), hence
    ``crc(A || B) = shift(crc(A), len(B)) ^ crc_from_zero(B)``.

    Args:
        data: The bytes.
        n_chunks: Chunks processed in parallel (a speed knob; the result does not depend on it).

    Returns:
        The unmasked CRC-32C as an unsigned 32-bit int.
    """
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    register = 0xFFFFFFFF
    chunk = buf.size // n_chunks
    if chunk >= 64:
        table = _crc_table()
        body = buf[: chunk * n_chunks].reshape(n_chunks, chunk)
        regs = np.zeros(n_chunks, dtype=np.uint32)
        for i in range(chunk):
            regs = table[(regs ^ body[:, i]) & 0xFF] ^ (regs >> 8)
        shift = _zeros_operator(chunk)
        for r in regs.tolist():
            register = _apply(shift, register) ^ r
        tail = buf[chunk * n_chunks :].tobytes()
    else:
        tail = buf.tobytes()
    return _crc_raw(register, tail) ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """LevelDB/TensorFlow CRC masking (rotate right by 15, add a constant)."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --------------------------------------------------------------------------- varints / protobuf


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message: varints as int, length-delimited as bytes."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value = bytes(buf[pos : pos + n])
            pos += n
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((field, value))
    return fields


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives in the data shard (a decoded ``BundleEntryProto``)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored
    sliced: bool


def _parse_entry(name: str, buf: bytes) -> BundleEntry:
    dtype = 0
    shape: list[int] = []
    shard_id = offset = size = crc = 0
    sliced = False
    for field, value in _proto_fields(buf):
        if field == 1:
            dtype = int(value)
        elif field == 2:  # TensorShapeProto: repeated Dim dim = 2 (Dim: int64 size = 1)
            for f, dim in _proto_fields(value):  # type: ignore[arg-type]
                if f == 2:
                    size_fields = [v for ff, v in _proto_fields(dim) if ff == 1]  # type: ignore[arg-type]
                    shape.append(int(size_fields[0]) if size_fields else 0)
        elif field == 3:
            shard_id = int(value)
        elif field == 4:
            offset = int(value)
        elif field == 5:
            size = int(value)
        elif field == 6:
            crc = int(value)
        elif field == 7:
            sliced = True
    return BundleEntry(name, dtype, tuple(shape), shard_id, offset, size, crc, sliced)


# --------------------------------------------------------------------------- LevelDB table


def _read_block(data: bytes, offset: int, size: int, where: str) -> bytes:
    block = data[offset : offset + size]
    trailer = data[offset + size : offset + size + _BLOCK_TRAILER]
    if len(block) != size or len(trailer) != _BLOCK_TRAILER:
        raise InputError(where, "truncated table block")
    if trailer[0] != 0:
        raise InputError(where, f"compressed table block (type {trailer[0]}) is not supported")
    stored = struct.unpack("<I", trailer[1:])[0]
    if mask_crc(crc32c(block + trailer[:1])) != stored:
        raise InputError(where, f"table block at offset {offset}: crc32c mismatch")
    return block


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of a LevelDB block (keys are prefix-compressed against the previous key)."""
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_index(index_path: str | Path) -> dict[str, BundleEntry]:
    """Decode a tensor-bundle ``.index`` file.

    Args:
        index_path: The checkpoint's ``.index`` file.

    Returns:
        Tensor name -> entry, in the table's (sorted) order; the header entry (empty
        key) is left out.

    Raises:
        InputError: Not a LevelDB table, a damaged block or an unsupported feature (names the file).
    """
    where = str(index_path)
    data = Path(index_path).read_bytes()
    if len(data) < _FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != _TABLE_MAGIC:
        raise InputError(where, "not a tensor-bundle index (LevelDB table magic missing)")
    footer = data[len(data) - _FOOTER_SIZE :]
    _meta_off, pos = _varint(footer, 0)
    _meta_size, pos = _varint(footer, pos)
    index_off, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries: dict[str, BundleEntry] = {}
    for _last_key, handle in _block_entries(_read_block(data, index_off, index_size, where)):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block_entries(_read_block(data, off, size, where)):
            if key == b"":  # BundleHeaderProto (num_shards, endianness, version)
                header = dict(_proto_fields(value))
                if int(header.get(2, 0)) != 0:
                    raise InputError(where, "big-endian tensor bundles are not supported")
                continue
            name = key.decode("utf-8")
            entries[name] = _parse_entry(name, value)
    return entries


class Checkpoint:
    """A TensorFlow tensor-bundle checkpoint opened for reading.

    Args:
        prefix: The checkpoint prefix: ``<prefix>.index`` and ``<prefix>.data-00000-of-00001``
            must exist. TF1 savers called with a directory (as the musicnn wheel's were)
            give a prefix ending in ``/``, i.e. files named ``.index`` inside that folder.

    Raises:
        InputError: A missing or malformed file (named).
    """

    def __init__(self, prefix: str | Path):
        self.prefix = str(prefix)
        index = Path(self.prefix + ".index")
        if not index.exists():
            raise InputError(str(index), "checkpoint index not found")
        self.entries = read_index(index)
        shards = {e.shard_id for e in self.entries.values()}
        if shards - {0}:
            raise InputError(self.prefix, f"multi-shard checkpoints are not supported (shards {sorted(shards)})")
        self.data_path = Path(self.prefix + ".data-00000-of-00001")
        if not self.data_path.exists():
            raise InputError(str(self.data_path), "checkpoint data shard not found")
        self._data: bytes | None = None

    def names(self) -> list[str]:
        """Every tensor name, sorted."""
        return sorted(self.entries)

    def _bytes(self) -> bytes:
        if self._data is None:
            self._data = self.data_path.read_bytes()
        return self._data

    def tensor(self, name: str, *, check_crc: bool = True) -> np.ndarray:
        """One tensor as a (copied, native-endian) numpy array.

        Raises:
            KeyError: No tensor of that name.
            InputError: Unsupported dtype, sliced tensor, short data or crc32c mismatch
                (one line naming the tensor).
        """
        entry = self.entries[name]
        where = f"{self.prefix} tensor {name!r}"
        if entry.sliced:
            raise InputError(where, "partitioned (sliced) tensors are not supported")
        dtype = _DTYPES.get(entry.dtype)
        if dtype is None:
            raise InputError(where, f"unsupported dtype {entry.dtype} (TensorFlow DataType enum)")
        count = int(np.prod(entry.shape, dtype=np.int64)) if entry.shape else 1
        if count * dtype.itemsize != entry.size:
            raise InputError(where, f"size {entry.size} bytes does not match shape {entry.shape} x {dtype}")
        raw = memoryview(self._bytes())[entry.offset : entry.offset + entry.size]
        if len(raw) != entry.size:
            raise InputError(where, "data shard is truncated")
        if check_crc:
            actual = mask_crc(crc32c(raw))
            if actual != entry.crc32c:
                raise InputError(where, f"crc32c mismatch (stored {entry.crc32c:#010x}, data {actual:#010x})")
        return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).astype(dtype.newbyteorder("="), copy=True)

    def tensors(self, names: list[str] | None = None, *, check_crc: bool = True) -> dict[str, np.ndarray]:
        """Several tensors by name (default: all), each crc-checked."""
        return {n: self.tensor(n, check_crc=check_crc) for n in (names if names is not None else self.names())}

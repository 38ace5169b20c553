"""The tensor-bundle reader on the four checkpoints of the musicnn wheel (no TensorFlow)."""

from __future__ import annotations

import shutil
import zlib

import numpy as np
import pytest

from mgdata.errors import InputError
from mgdata.musicnn import checkpoint as ck
from mgdata.musicnn.model import wheel_dir


def _wheel():
    try:
        return wheel_dir()
    except InputError as exc:  # the Makefile installs it; a bare venv may not have it
        pytest.skip(str(exc))


def test_crc32c_known_vectors():
    assert ck.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert ck.crc32c(b"") == 0
    data = np.random.default_rng(0).integers(0, 256, 100_003, dtype=np.uint8).tobytes()
    # The chunked numpy path agrees with the byte loop for any chunking.
    assert ck.crc32c(data) == ck.crc32c(data, n_chunks=7) == ck._crc_raw(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    assert ck.crc32c(data) != zlib.crc32(data)  # Castagnoli, not the zlib polynomial


EXPECTED = {
    "MTT_musicnn": {"conv2d/kernel": (7, 38, 1, 204), "conv2d_5/kernel": (7, 561, 1, 64), "dense/kernel": (1506, 200)},
    "MSD_musicnn": {"conv2d_2/kernel": (128, 1, 1, 51), "batch_normalization_9/moving_variance": (1506,)},
    "MTT_vgg": {"1CNN/kernel": (3, 3, 1, 128), "5CNN/kernel": (3, 3, 128, 128), "dense/kernel": (256, 50)},
    "MSD_vgg": {"2CNN/bias": (128,), "batch_normalization_5/gamma": (128,), "dense/bias": (50,)},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wheel_checkpoints_read_with_valid_crc(name):
    ckpt = ck.Checkpoint(str(_wheel() / name) + "/")
    n_vars = {"MTT_musicnn": 150, "MSD_musicnn": 150, "MTT_vgg": 86, "MSD_vgg": 86}[name]
    assert len(ckpt.names()) == n_vars  # model variables + Adam slots + beta powers
    for tensor_name, shape in EXPECTED[name].items():
        assert ckpt.entries[tensor_name].shape == shape
    tensors = ckpt.tensors()  # every tensor, each crc-checked
    assert all(np.isfinite(a).all() for a in tensors.values())
    assert all(a.dtype == np.float32 for a in tensors.values())
    total = sum(e.size for e in ckpt.entries.values())
    assert total == ckpt.data_path.stat().st_size


def test_corrupted_tensor_is_a_one_line_error_naming_it(tmp_path):
    src = _wheel() / "MTT_vgg"
    dst = tmp_path / "MTT_vgg"
    dst.mkdir()
    for f in (".index", ".data-00000-of-00001"):
        shutil.copy(src / f, dst / f)
    ckpt = ck.Checkpoint(str(dst) + "/")
    entry = ckpt.entries["3CNN/kernel"]
    data = bytearray((dst / ".data-00000-of-00001").read_bytes())
    data[entry.offset + 1000] ^= 0x01
    (dst / ".data-00000-of-00001").write_bytes(bytes(data))
    ckpt = ck.Checkpoint(str(dst) + "/")
    ckpt.tensor("2CNN/kernel")  # neighbours still read
    with pytest.raises(InputError) as exc:
        ckpt.tensor("3CNN/kernel")
    msg = str(exc.value)
    assert "'3CNN/kernel'" in msg and "crc32c mismatch" in msg and "\n" not in msg


def test_unknown_dtype_and_damaged_index(tmp_path):
    src = _wheel() / "MSD_vgg"
    ckpt = ck.Checkpoint(str(src) + "/")
    entry = ckpt.entries["dense/bias"]
    ckpt.entries["dense/bias"] = ck.BundleEntry(**{**entry.__dict__, "dtype": 7})  # DT_STRING
    with pytest.raises(InputError, match=r"'dense/bias': unsupported dtype 7"):
        ckpt.tensor("dense/bias")

    index = bytearray((src / ".index").read_bytes())
    index[40] ^= 0xFF  # inside the first data block
    (tmp_path / ".index").write_bytes(bytes(index))
    with pytest.raises(InputError, match="crc32c mismatch"):
        ck.read_index(tmp_path / ".index")
    (tmp_path / "bad.index").write_bytes(b"\0" * 64)
    with pytest.raises(InputError, match="not a tensor-bundle index"):
        ck.read_index(tmp_path / "bad.index")

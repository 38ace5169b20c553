"""The shard store: deterministic, atomic, verified, resumable WebDataset tar shards.

An *artifact* is a directory of shards ``{split}-{index:06d}.tar``, one sidecar
index per shard (``.tar.idx``, JSON: keys, member sizes, sha256 per sample,
samples, audio seconds, labels, sha256, and its own digest), side files added
with :meth:`ArtifactWriter.add_file`, and an ``artifact.json`` (provenance,
fingerprint, per-split counts, the digest of every index, size and sha256 of
every side file) written last, when the artifact is complete.

* Deterministic: members sorted within a sample, fixed mtime/uid/gid/mode, no
  timestamps anywhere, so the same samples give byte-identical tars and DVC sees
  no change.
* Atomic: a shard is written as ``.tmp`` and renamed when complete; its index is
  renamed after it and acts as the commit marker; every file is fsynced before
  ``artifact.json``.
* Verified: the index is recomputed from the tar bytes (keys, members, sizes,
  checksums) and bound to ``artifact.json`` by its digest; readers verify by
  default and refuse unsafe tar members.
* Resumable and exclusive: :class:`ArtifactWriter` locks its folder, keeps the
  prefix of shards that verify, and exposes their keys as ``done_keys`` so a
  builder skips that work; everything after is rebuilt.
* Streaming: :func:`iter_samples` reads one tar member at a time (constant memory).

Samples follow the WebDataset convention: ``{key}.{member}`` tar entries, grouped
by key; every sample of an artifact has the same member names, as the Hugging
Face ``datasets`` webdataset loader requires.

Modules: :mod:`~mgdata.store.codec` (keys, JSON, npy, hashes),
:mod:`~mgdata.store.shard` (one shard and its index),
:mod:`~mgdata.store.artifact` (the writer, ``artifact.json``),
:mod:`~mgdata.store.reader` (streaming readers), :mod:`~mgdata.store.inspect`.
"""

from mgdata.store.artifact import (
    ARTIFACT_JSON,
    JOURNAL_NAME,
    LOCK_NAME,
    ArtifactWriter,
    SplitSummary,
    check_side_file_name,
    list_shards,
    read_artifact_info,
)
from mgdata.store.codec import (
    KEY_RE,
    MEMBER_RE,
    DecodeError,
    JsonRecord,
    canonical_json,
    decode_json,
    decode_npy,
    decode_sample_json,
    encode_json,
    encode_npy,
    fingerprint,
    load_json_file,
    make_key,
    record_from_json,
    sample_where,
    sha256_file,
)
from mgdata.store.inspect import SAMPLE_PROVENANCE, inspect_artifact
from mgdata.store.reader import artifact_index_digests, iter_samples
from mgdata.store.shard import (
    FORMAT,
    INDEX_SUFFIX,
    SHARD_RE,
    Sample,
    check_index,
    check_shard,
    index_digest,
    index_path,
    iter_shard,
    load_index,
    read_index,
    shard_name,
    verify_shard,
)

__all__ = [
    "ARTIFACT_JSON",
    "FORMAT",
    "INDEX_SUFFIX",
    "JOURNAL_NAME",
    "KEY_RE",
    "LOCK_NAME",
    "MEMBER_RE",
    "SAMPLE_PROVENANCE",
    "SHARD_RE",
    "ArtifactWriter",
    "DecodeError",
    "JsonRecord",
    "Sample",
    "SplitSummary",
    "artifact_index_digests",
    "canonical_json",
    "check_index",
    "check_shard",
    "check_side_file_name",
    "decode_json",
    "decode_npy",
    "decode_sample_json",
    "record_from_json",
    "sample_where",
    "encode_json",
    "encode_npy",
    "fingerprint",
    "index_digest",
    "index_path",
    "inspect_artifact",
    "iter_samples",
    "iter_shard",
    "list_shards",
    "load_index",
    "load_json_file",
    "make_key",
    "read_artifact_info",
    "read_index",
    "sha256_file",
    "shard_name",
    "verify_shard",
]

"""Publish artifacts to the Hugging Face Hub and pull them back as pipeline inputs.

* :func:`push_artifact` (``mgdata hub push``): idempotent upload of an artifact's
  shards, indexes, side files, ``artifact.json`` and dataset card.
* :func:`pull_artifact` (``mgdata hub pull``) and :func:`resolve_artifact`: download
  ``hf://datasets/ORG/NAME@REVISION[/path]`` at a pinned commit, verify it, record
  the commit in ``hub.lock.json``; reuse the local copy offline.

``huggingface_hub`` is imported only inside these functions, so environment
settings such as ``HF_ENDPOINT`` and ``HF_HUB_DISABLE_XET`` made before the first
call still apply. Tokens are handled by ``huggingface_hub`` only.
"""

from mgdata.hub.files import artifact_files, check_tar_members, read_lock
from mgdata.hub.pull import (
    HubURI,
    PullResult,
    hub_provenance,
    is_hub_uri,
    parse_hub_uri,
    pull_artifact,
    resolve_artifact,
)
from mgdata.hub.push import PushResult, push_artifact

__all__ = [
    "HubURI",
    "PullResult",
    "PushResult",
    "artifact_files",
    "check_tar_members",
    "hub_provenance",
    "is_hub_uri",
    "parse_hub_uri",
    "pull_artifact",
    "push_artifact",
    "read_lock",
    "resolve_artifact",
]

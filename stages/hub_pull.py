"""DVC stage ``hub_pull@<name>``: pull a published dataset (``hub.inputs``) at its pinned revision.

Downloads ``hf://datasets/ORG/NAME@REVISION[/path]`` into ``data/hub/<name>``,
verifies every shard against its index and every side file against
``artifact.json``, refuses unsafe paths and tar members, and writes
``hub.lock.json`` (the resolved commit sha and every file's sha256), which DVC
tracks with the folder. Once pulled, reruns work offline from the local copy.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("hub_pull", doc=__doc__))

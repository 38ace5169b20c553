"""Stage ``jamendo``: MTG-Jamendo audio clips as a source artifact in the corpus mix format.

NOT part of the default pipeline (not in dvc.yaml): MTG-Jamendo audio must be
downloaded by the user (~150 GB of MP3s from the dataset's own servers, see
https://github.com/MTG/mtg-jamendo-dataset); nothing here downloads it.

To wire it in:

1. download the metadata (the repository's ``data/`` directory) and the audio;
2. in params.yaml set ``relabel.jamendo.metadata_dir`` (the ``data/`` directory,
   holding ``splits/``) and ``relabel.jamendo.audio_root`` (the directory the TSV
   ``PATH`` column is relative to); ``clip_s``, ``clip_position``,
   ``sample_rate``, ``split_index`` and ``subset`` choose the clips;
3. run ``sh stages/py stages/jamendo.py``: it writes ``data/jamendo/mix/`` (shards:
   ``flac`` + ``json`` per track, like ``data/corpus/mix``),
   ``data/jamendo/manifest.parquet`` ``metrics/jamendo.json`` and ``stage_reports/jamendo.json``;
4. point the audio stages at it; they read ``data/jamendo/mix`` exactly as they
   read ``data/corpus/mix``:

     sh stages/py stages/relabel.py          # with metadata_dir set: data/relabel/jamendo_quadrants.parquet
     sh stages/py stages/generate.py --generator resynth --corpus data/jamendo/mix          --labels data/relabel/jamendo_quadrants.parquet --out-dir data/generate/<name>-jamendo
     sh stages/py stages/embed.py --embedder logmel --artifact jamendo --artifact-dir data/jamendo/mix
     # or add {name: jamendo, path: data/jamendo/mix} to embed.artifacts in params.yaml

   (labels join on the raw MTG-Jamendo ``track_id``, e.g. ``track_0000948``; the
   manifest has the corpus-manifest columns ``relabel`` reads).

Reads params sections ``relabel`` (its ``jamendo`` block) and ``shards``.
Missing or unreadable audio files are skipped and listed in the stage report (unless
``relabel.jamendo.fail_on_error``). Rerunning after a crash keeps the verified
shards and decodes only the missing tracks.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("jamendo", doc=__doc__))

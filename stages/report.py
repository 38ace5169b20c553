"""DVC stage ``report``: the static HTML site to look at and listen to what the pipeline built.

Writes ``reports/index.html`` and ``reports/media/`` (FLAC clips, waveform and
spectrogram thumbnails, plots): per artifact the counts, hours and labels and its
provenance; a few clips per class of the corpus, the stem windows, every
generator next to its source clip, decision renders; the plots and results
tables. Self-contained: open it from disk, no network needed.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("report", doc=__doc__))

"""Helpers shared by the bench scripts: run a measurement in a fresh process, read its peak RSS."""

from __future__ import annotations

import multiprocessing as mp
import resource


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_fresh(target, *args):
    """Call ``target(*args, queue)`` in a spawned process and return what it put on the queue.

    A fresh process per measurement keeps one size's peak RSS and warm caches out of the next.
    """
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out

"""Parallel executor: run ``fn(item)`` over items in workers, yield results in input order.

Builders hand their CPU work (parse, render, decode, deform, embed, encode) to an
:class:`Executor` as shard-sized chunks whose boundaries are fixed up front by count,
and write the results with ONE writer in the parent in input order. The output
therefore never depends on the backend or the worker count, which is why
:class:`ExecConfig` (params section ``executor``) enters no fingerprint.

Backends:
    serial:  ``fn`` runs in the calling process (tests, debugging, torch-model paths).
    process: a ``ProcessPoolExecutor`` on the ``fork`` context (Linux) whose workers
             limit OpenMP/MKL/BLAS/torch to one thread each, so N workers use N cores
             instead of N x N threads fighting over them.
    ray:     Ray Core tasks (``pip install 'mgdata[ray]'``); ``ray_address`` or
             ``$RAY_ADDRESS`` joins a cluster, otherwise a local instance is started.
             Tasks read their inputs and the parent writes outputs through the
             filesystem: every node must mount the project at the same absolute path
             (a shared filesystem). Each task runs in the driver's working directory,
             so relative paths mean the same on every node; a node without that
             directory fails the task with one line naming the node and the path.

Every backend runs a task with BLAS limited to one thread (serial: only while the task
runs). A multi-threaded BLAS partitions a matrix product differently and can change the
last bits of a float32 result (measured: log-mel statistics differed by up to 8e-6
between the 2-thread parent and a 1-thread worker), so without this a serial build and
a parallel one would not be byte-identical.

Example:
    >>> from mgdata.exec import get_executor
    >>> with get_executor("serial") as ex:
    ...     list(ex.imap(abs, [-1, 2, -3]))
    [1, 2, 3]
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from mgdata.config import check
from mgdata.errors import DependencyError, InputError

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("serial", "process", "ray")

# Thread-pool variables read by OpenMP, MKL, OpenBLAS, numexpr and friends when they load.
_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


@dataclasses.dataclass(frozen=True)
class ExecConfig:
    """Section ``executor``: where builders run their CPU work (never part of a fingerprint).

    Attributes:
        backend: ``serial``, ``process`` or ``ray``.
        workers: Worker processes (ray: CPUs of a local instance); 0 means ``os.cpu_count()``.
        ray_address: Ray cluster address; ``None`` uses ``$RAY_ADDRESS`` or starts a local instance.
        max_pending: Bound on tasks in flight (submitted, result not yet yielded); 0 means
            ``2 * workers``, enough to keep every worker busy while the parent writes.
    """

    backend: str = "process"
    workers: int = 0
    ray_address: str | None = None
    max_pending: int = 0

    def __post_init__(self):
        check(self.backend in BACKENDS, "backend", f"expected one of {list(BACKENDS)}, got {self.backend!r}")
        check(self.workers >= 0, "workers", "expected an integer >= 0 (0 = os.cpu_count())")
        check(self.max_pending >= 0, "max_pending", "expected an integer >= 0 (0 = 2 * workers)")
        check(
            self.ray_address is None or bool(self.ray_address.strip()), "ray_address", "expected a Ray address or null"
        )

    @property
    def n_workers(self) -> int:
        """Resolved worker count (1 for serial)."""
        if self.backend == "serial":
            return 1
        return self.workers or os.cpu_count() or 1

    @property
    def n_pending(self) -> int:
        """Resolved bound on tasks in flight."""
        return self.max_pending or 2 * self.n_workers


def _dispatch_vars() -> list[str]:
    """Every variable some dispatch level sets, plus the level itself (mgdata.dispatch)."""
    from mgdata import dispatch

    return [dispatch.ENV_VAR, *sorted({k for env in dispatch.LEVELS.values() for k in env})]


def _describe_item(index: int, item: Any) -> str:
    text = repr(item)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"mgdata.exec: raised by task {index} (item {text})"


def _add_note(exc: BaseException, note: str) -> BaseException:
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(note)
    return exc


def _limit_threads() -> None:
    """Worker initializer: one thread per worker for every numeric library."""
    for name in _THREAD_ENV:
        os.environ[name] = "1"
    if "torch" in sys.modules:  # loaded in the parent before fork; set_num_threads is cheap
        try:
            sys.modules["torch"].set_num_threads(1)
        except Exception:  # noqa: BLE001 - a torch without threads support changes nothing here
            pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # env vars above still cover libraries loaded later
        pass


@contextlib.contextmanager
def blas_one_thread() -> Iterator[None]:
    """BLAS (OpenBLAS/MKL via threadpoolctl) limited to one thread inside the block."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # workers still get the env vars; serial results may differ in the last bits
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _node_name() -> str:
    import socket

    try:
        import ray

        node_id = ray.get_runtime_context().get_node_id()[:12]
        return f"{socket.gethostname()} ({ray.util.get_node_ip_address()}, node {node_id})"
    except Exception:  # noqa: BLE001 - outside a Ray worker the host name is enough
        return socket.gethostname()


def _enter_shared_dir(cwd: str) -> None:
    """Run in the driver's working directory ``cwd``; a node without it gets one line naming node and path.

    mgdata's tasks pass paths, not bytes: shards and audio can be gigabytes and are written by one writer in
    the parent, so a Ray cluster needs the project on a filesystem mounted at the same path on every node.
    """
    if os.getcwd() == cwd:
        return
    if not os.path.isdir(cwd):
        raise InputError(
            f"ray node {_node_name()}",
            f"the driver's working directory {cwd} does not exist here: mgdata's Ray tasks read inputs through a "
            "filesystem shared at the same path on every node (README, 'A Ray cluster')",
        )
    os.chdir(cwd)


def _ray_call(fn: Callable[[T], R], item: T, cwd: str) -> R:
    """The ray task body: ``fn(item)`` in the driver's working directory with one BLAS thread."""
    _enter_shared_dir(cwd)
    with blas_one_thread():
        try:
            return fn(item)
        except FileNotFoundError as exc:  # name the node: the path may exist on the driver's machine only
            _add_note(exc, f"on ray node {_node_name()} (working directory {cwd})")
            raise


class Executor:
    """Runs ``fn`` over items on one backend; use as a context manager (``close`` on exit).

    Args:
        cfg: The executor settings.
    """

    def __init__(self, cfg: ExecConfig):
        self.cfg = cfg
        self._pool: ProcessPoolExecutor | None = None
        self._ray_started = False
        self._ray = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def backend(self) -> str:
        return self.cfg.backend

    @property
    def workers(self) -> int:
        return self.cfg.n_workers

    def __repr__(self) -> str:
        return f"Executor(backend={self.backend!r}, workers={self.workers}, max_pending={self.cfg.n_pending})"

    # -- backends -------------------------------------------------------------------------------------------------
    def _process_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # fork: workers inherit the imported modules (fast start, no re-import of torch/librosa);
            # elsewhere fall back to the platform default.
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods and sys.platform == "linux" else None)
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_limit_threads)
        return self._pool

    def _ray_module(self):
        if self._ray is None:
            try:
                import ray
            except ImportError:
                raise DependencyError(
                    "executor backend 'ray' needs Ray: pip install 'mgdata[ray]' (or choose executor.backend "
                    "serial/process)"
                ) from None
            if not ray.is_initialized():
                address = self.cfg.ray_address or os.environ.get("RAY_ADDRESS") or None
                # Workers on other nodes do not inherit this process's environment: ship the SIMD dispatch pin
                # (mgdata.dispatch) so their numpy/torch load at the same level and write the same bytes.
                runtime_env = {"env_vars": {k: os.environ[k] for k in _dispatch_vars() if k in os.environ}}
                if address:
                    ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
                else:
                    ray.init(
                        num_cpus=self.workers,
                        include_dashboard=False,
                        log_to_driver=False,
                        runtime_env=runtime_env,
                    )
                self._ray_started = True
            self._ray = ray
        return self._ray

    # -- public API -----------------------------------------------------------------------------------------------
    def imap(
        self, fn: Callable[[T], R], items: Iterable[T], *, desc: str | None = None, progress: bool = False
    ) -> Iterator[R]:
        """``fn(item)`` for each item, yielded in input order.

        Items are consumed lazily and at most ``max_pending`` tasks are in flight, so
        memory stays bounded for long inputs. ``fn`` must be a picklable top-level
        function and items/results picklable (process and ray backends).

        Args:
            fn: The task function.
            items: Any iterable of task inputs.
            desc: Label of the progress bar.
            progress: Show a tqdm bar counting finished tasks (on stderr).

        Yields:
            ``fn(item)`` in the order of ``items``.

        Raises:
            Exception: The first failing task's exception (same type when picklable),
                with a note naming the task index and item, after the tasks still in
                flight are cancelled.
        """
        bar = None
        if progress:
            from tqdm.auto import tqdm

            total = len(items) if hasattr(items, "__len__") else None
            bar = tqdm(total=total, desc=desc or f"{self.backend}x{self.workers}", unit="task", file=sys.stderr)
        try:
            if self.backend == "serial":
                inner = self._imap_serial(fn, items)
            elif self.backend == "process":
                inner = self._imap_process(fn, items)
            else:
                inner = self._imap_ray(fn, items)
            for result in inner:
                if bar is not None:
                    bar.update(1)
                yield result
        finally:
            if bar is not None:
                bar.close()

    def _imap_serial(self, fn, items):
        for index, item in enumerate(items):
            try:
                with blas_one_thread():
                    result = fn(item)
            except Exception as exc:
                _add_note(exc, _describe_item(index, item))
                raise
            yield result

    def _imap_process(self, fn, items):
        pool = self._process_pool()
        pending: collections.deque[tuple[int, Any, Future]] = collections.deque()
        source = enumerate(items)
        try:
            for index, item in itertools.islice(source, self.cfg.n_pending):
                pending.append((index, item, pool.submit(fn, item)))
            while pending:
                index, item, future = pending.popleft()
                try:
                    result = future.result()
                except Exception as exc:
                    _add_note(exc, _describe_item(index, item))
                    raise
                for nxt_index, nxt in itertools.islice(source, 1):
                    pending.append((nxt_index, nxt, pool.submit(fn, nxt)))
                yield result
        finally:  # error or the caller stopped early: drop what has not started
            for _, _, future in pending:
                future.cancel()

    def _imap_ray(self, fn, items):
        ray = self._ray_module()
        remote_fn = ray.remote(num_cpus=1, max_retries=0)(_ray_call)
        cwd = os.getcwd()
        pending: collections.deque = collections.deque()
        source = enumerate(items)
        try:
            for index, item in itertools.islice(source, self.cfg.n_pending):
                pending.append((index, item, remote_fn.remote(fn, item, cwd)))
            while pending:
                index, item, ref = pending.popleft()
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, Exception):
                        raise _add_note(cause, _describe_item(index, item)) from exc
                    _add_note(exc, _describe_item(index, item))
                    raise
                for nxt_index, nxt in itertools.islice(source, 1):
                    pending.append((nxt_index, nxt, remote_fn.remote(fn, nxt, cwd)))
                yield result
        finally:
            for _, _, ref in pending:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - the task may have finished meanwhile
                    pass

    def close(self) -> None:
        """Shut the worker pool down (and a Ray instance this executor started)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._ray is not None and self._ray_started:
            self._ray.shutdown()
            self._ray_started = False
        self._ray = None


def get_executor(cfg: ExecConfig | str | None = None) -> Executor:
    """An :class:`Executor` for ``cfg`` (a config, a backend name, or ``None`` for the defaults)."""
    if cfg is None:
        cfg = ExecConfig()
    elif isinstance(cfg, str):
        cfg = ExecConfig(backend=cfg)
    elif not isinstance(cfg, ExecConfig):
        raise TypeError(f"get_executor: expected ExecConfig, a backend name or None, got {cfg!r}")
    return Executor(cfg)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter): task boundaries fixed by count.

    Boundaries depend only on the item order and ``size``, never on the backend, so
    per-chunk work (and any per-chunk seeding) is identical for every executor.
    """
    if size < 1:
        raise ValueError(f"chunked: size must be >= 1, got {size}")
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def executor_for(cfg: ExecConfig | None, *, process_safe: bool = True, what: str = "") -> ExecConfig:
    """The executor config a builder runs on: ``cfg``, or serial where none is given or the work cannot move.

    Every builder takes ``executor=None`` to mean "serially, in this process" (tests, library
    calls); the stage passes the params section ``executor``.

    Args:
        cfg: Section ``executor``, or ``None``.
        process_safe: False when the task function cannot run in a worker process (a loaded model
            that is not shared with workers): any backend then falls back to serial.
        what: Names the work (``"generate: musicgen"``) in the log line of that fallback.

    Returns:
        An :class:`ExecConfig` for :func:`get_executor`.
    """
    if cfg is None:
        return ExecConfig(backend="serial")
    if not process_safe and cfg.backend != "serial":
        # Said once per build: a configured backend that is not used would otherwise look like a bug.
        logging.getLogger("mgdata").info("%s runs in the parent process (not shared with workers)", what or "this work")
        return ExecConfig(backend="serial")
    return cfg


def _where(_item: Any) -> tuple[str, str]:
    """(node, working directory) of the process running this task (for :func:`check_cluster`)."""
    return _node_name(), os.getcwd()


def check_cluster(cfg: ExecConfig | str | None = None, n_tasks: int = 8) -> dict[str, int]:
    """Run ``n_tasks`` tiny tasks on the executor; tasks per node (each ran in the driver's working directory).

    A cluster where some node lacks the project path fails here, naming the node, before any stage runs.
    """
    counts: dict[str, int] = {}
    with get_executor(cfg) as ex:
        for node, cwd in ex.imap(_where, range(n_tasks)):
            if cwd != os.getcwd():  # a backend that did not enter the driver's directory: a bug, not a setup error
                raise RuntimeError(f"task on {node} ran in {cwd}, not in the driver's {os.getcwd()}")
            counts[node] = counts.get(node, 0) + 1
    return counts

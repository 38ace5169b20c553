"""The parallel executor: input order, errors named and re-raised, bounded in-flight tasks, equal results."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from mgdata.config import from_dict
from mgdata.errors import DependencyError, ParamsError
from mgdata.exec import ExecConfig, chunked, get_executor


def _square_slow_first(x: int) -> int:
    # Early items finish last, so a backend yielding in completion order would fail the order test.
    if x < 3:
        import time

        time.sleep(0.05 * (3 - x))
    return x * x


def _fail_on_7(x: int) -> int:
    if x == 7:
        raise ValueError(f"bad item {x}")
    return x


def _pid(_x: int) -> int:
    return os.getpid()


def _threads(_x: int) -> str:
    import torch

    return f"{os.environ.get('OMP_NUM_THREADS')}/{torch.get_num_threads()}"


def _digest(chunk: list[int]) -> str:
    return hashlib.sha256(repr([(i, i**3 % 97) for i in chunk]).encode()).hexdigest()


BACKENDS = [
    ExecConfig(backend="serial"),
    ExecConfig(backend="process", workers=1),
    ExecConfig(backend="process", workers=2),
]


@pytest.mark.parametrize("cfg", BACKENDS, ids=["serial", "process1", "process2"])
def test_results_in_input_order(cfg):
    with get_executor(cfg) as ex:
        assert list(ex.imap(_square_slow_first, range(12))) == [i * i for i in range(12)]


def test_serial_process1_process2_give_equal_results():
    items = list(chunked(range(200), 16))
    results = []
    for cfg in BACKENDS:
        with get_executor(cfg) as ex:
            results.append(list(ex.imap(_digest, items)))
    assert results[0] == results[1] == results[2] and len(results[0]) == 13


@pytest.mark.parametrize("cfg", BACKENDS, ids=["serial", "process1", "process2"])
def test_task_error_is_reraised_with_its_item_named(cfg):
    got = []
    with get_executor(cfg) as ex, pytest.raises(ValueError, match="bad item 7") as info:
        for r in ex.imap(_fail_on_7, range(20)):
            got.append(r)
    assert got == list(range(7))  # results before the failing item were delivered, none after
    assert any("task 7" in n and "item 7" in n for n in getattr(info.value, "__notes__", []))


def test_in_flight_tasks_are_bounded():
    consumed = []

    def items():
        for i in range(100):
            consumed.append(i)
            yield i

    cfg = ExecConfig(backend="process", workers=2, max_pending=3)
    with get_executor(cfg) as ex:
        it = ex.imap(abs, items())
        assert next(it) == 0
        # After one result: at most max_pending submitted + 1 refill, never the whole input.
        assert len(consumed) <= 4
        rest = list(it)
    assert rest == list(range(1, 100))
    assert ExecConfig(backend="process", workers=3).n_pending == 6


def test_process_workers_are_separate_single_threaded_processes():
    with get_executor(ExecConfig(backend="process", workers=2)) as ex:
        pids = set(ex.imap(_pid, range(8)))
        threads = set(ex.imap(_threads, range(4)))
    assert os.getpid() not in pids
    assert threads == {"1/1"}


def test_progress_bar_counts_tasks(capsys):
    with get_executor("serial") as ex:
        assert list(ex.imap(abs, [-1, -2, -3], progress=True, desc="demo")) == [1, 2, 3]
    err = capsys.readouterr().err
    assert "demo" in err and "3/3" in err


def test_early_stop_cancels_pending_and_close_is_idempotent():
    ex = get_executor(ExecConfig(backend="process", workers=1, max_pending=2))
    it = ex.imap(_square_slow_first, range(50))
    assert next(it) == 0
    it.close()  # the caller stops: pending futures are cancelled, no hang
    ex.close()
    ex.close()
    assert threading.active_count() >= 1


def test_config_validation_and_params_section():
    assert ExecConfig().backend == "process" and ExecConfig(workers=0).n_workers == (os.cpu_count() or 1)
    assert ExecConfig(backend="serial", workers=4).n_workers == 1
    assert get_executor("serial").backend == "serial" and get_executor(None).backend == "process"
    with pytest.raises(ParamsError, match="executor.backend"):
        from_dict(ExecConfig, {"backend": "threads"}, "executor")
    with pytest.raises(ParamsError, match="executor.workers"):
        from_dict(ExecConfig, {"workers": -1}, "executor")
    with pytest.raises(ParamsError, match="executor.max_pending"):
        from_dict(ExecConfig, {"max_pending": "many"}, "executor")
    with pytest.raises(TypeError):
        get_executor(3)
    from mgdata.config import load_section
    from mgdata.params import section_class

    # The shipped params.yaml has the section, registered for `mgdata params check`.
    assert section_class("executor") is ExecConfig
    shipped = load_section(Path(__file__).resolve().parents[1] / "params.yaml", "executor", ExecConfig)
    assert shipped.backend in ("serial", "process", "ray")


def test_chunked_boundaries_are_fixed_by_count():
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    with pytest.raises(ValueError):
        list(chunked(range(3), 0))


def test_ray_missing_is_a_clear_dependency_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with get_executor("ray") as ex, pytest.raises(DependencyError, match=r"pip install 'mgdata\[ray\]'"):
        list(ex.imap(abs, [1]))


@pytest.mark.slow
def test_ray_gives_the_same_results_and_byte_identical_embeddings(tmp_path):
    ray = pytest.importorskip("ray")
    from mgdata.embed.build import build_embeddings
    from mgdata.embed.config import EmbedConfig
    from mgdata.testing import make_corpus_artifact

    items = list(chunked(range(200), 16))
    # Ray workers import task functions by module name: let them find this test module.
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent)}},
    )
    try:
        cfg = ExecConfig(backend="ray", workers=2)
        with get_executor(cfg) as ex:
            assert list(ex.imap(_square_slow_first, range(12))) == [i * i for i in range(12)]
            assert list(ex.imap(_digest, items)) == [_digest(c) for c in items]
            with pytest.raises(ValueError, match="bad item 7") as info:
                list(ex.imap(_fail_on_7, range(20)))
            assert any("task 7" in n for n in getattr(info.value, "__notes__", []))

        corpus = make_corpus_artifact(tmp_path / "corpus", n_tracks=8)
        digests = []
        for name, exe in [("serial", ExecConfig(backend="serial")), ("process2", ExecConfig(workers=2)), ("ray", cfg)]:
            out = tmp_path / name
            build_embeddings(corpus / "mix", out, cfg=EmbedConfig(), embedder="logmel", executor=exe)
            digests.append(
                {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}
            )
        assert digests[0] == digests[1] == digests[2]
        assert any(n.endswith(".npy") for n in digests[0]) and any(n.endswith(".tar") for n in digests[0])
    finally:
        ray.shutdown()


def _bad_input(x: int) -> int:
    from mgdata.corpus.scores import BadScore

    raise BadScore(f"bach/bwv{x}", "no_key", "no key signature")


def test_errors_from_a_worker_arrive_whole_in_the_parent():
    # mgdata errors take other arguments than their formatted message: without MgdataError.__reduce__ a worker's
    # error fails to unpickle in the parent and the user sees a pickling traceback instead of the one line.
    from mgdata.corpus.scores import BadScore

    with get_executor(ExecConfig(workers=2)) as ex, pytest.raises(BadScore) as info:
        list(ex.imap(_bad_input, [3]))
    assert str(info.value) == "bach/bwv3: no_key: no key signature" and info.value.reason == "no_key"


def test_ray_task_enters_the_drivers_directory_or_names_node_and_path(tmp_path, monkeypatch):
    from mgdata.errors import InputError
    from mgdata.exec import _enter_shared_dir

    monkeypatch.chdir(tmp_path)
    (tmp_path / "project").mkdir()
    _enter_shared_dir(str(tmp_path / "project"))
    assert Path.cwd() == tmp_path / "project"
    missing = str(tmp_path / "not-mounted")
    with pytest.raises(InputError, match=r"^ray node .*: the driver's working directory .*not-mounted does not exist"):
        _enter_shared_dir(missing)
    assert Path.cwd() == tmp_path / "project"  # nothing changed

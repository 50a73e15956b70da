"""Ordered parallel map over worker processes, for decoding many images at once."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from vigil.errors import SourceError

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")

Progress = Callable[[int, int], None]
"""Called with (items done, items in all) as work completes."""


def worker_context() -> multiprocessing.context.SpawnContext:
    """Return the start method of every data worker: spawn (no inherited threads or locks)."""
    return multiprocessing.get_context("spawn")


def init_worker() -> None:
    """Run in each new worker: one OpenCV thread, and Vigil's log lines kept out of the console.

    Workers repeat per-image warnings that the caller already reports (a truncated JPEG read
    every epoch), so they log nowhere.
    """
    import logging

    import cv2

    cv2.setNumThreads(1)
    logging.getLogger("vigil").addHandler(logging.NullHandler())
    logging.getLogger("vigil").propagate = False


def parallel_map(
    function: Callable[[ArgT], ResultT],
    args: Iterable[ArgT],
    workers: int,
    *,
    chunksize: int = 8,
) -> Generator[ResultT, None, None]:
    """Yield ``function(arg)`` for each arg, in order, computed by ``workers`` processes.

    ``function`` must be a module-level function; one worker runs everything in this process.

    Raises:
        SourceError: a worker process died (for example killed for lack of memory).

    """
    if workers <= 1:
        yield from map(function, args)
        return
    pool = ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=init_worker)
    try:
        yield from pool.map(function, args, chunksize=chunksize)
    except BrokenProcessPool:
        raise SourceError(
            "a worker process stopped unexpectedly (out of memory?); try fewer workers"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def with_progress(
    results: Iterable[ResultT], total: int, progress: Progress | None
) -> Iterator[ResultT]:
    """Pass ``results`` through, calling ``progress(done, total)`` after each."""
    for done, result in enumerate(results, start=1):
        if progress is not None:
            progress(done, total)
        yield result


__all__ = ["Progress", "init_worker", "parallel_map", "with_progress", "worker_context"]

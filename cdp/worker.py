"""A function applied block by block in a second process, its results back in order.

For pure Python work that one core cannot keep up with while the main process does
its own share: the bulk import parses and validates lines here while the main process
writes them. The worker is spawned (not forked: it inherits no database connection) and
holds no state besides `setup`, so a block's result depends on nothing else.
"""

import multiprocessing
import queue
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

S = TypeVar("S")
B = TypeVar("B")
R = TypeVar("R")

# Seconds between checks that the worker is still alive while waiting for a result.
_ALIVE_CHECK = 1.0


class WorkerFailed(RuntimeError):
    """The worker process stopped without a result or raised an unexpected error."""


def mapped_in_worker(
    function: Callable[[S, B], R],
    setup: S,
    blocks: Iterable[B],
    *,
    depth: int = 4,
    initializer: Callable[[], object] | None = None,
) -> Iterator[R]:
    """function(setup, block) for each block, computed in a worker process, in order.

    At most `depth` blocks are out at once, so reading ahead is bounded. An error inside
    `function` is raised here (as itself when it can be pickled); closing the iterator
    early stops the worker. `function` and `initializer` (called once in the worker,
    first) must be importable by name (module level).
    """
    context = multiprocessing.get_context("spawn")
    tasks: Queue[Any] = context.Queue(depth)
    results: Queue[Any] = context.Queue(depth)
    worker = context.Process(
        target=_serve,
        args=(function, setup, initializer, tasks, results),
        name="cdp-worker",
        daemon=True,
    )
    worker.start()
    try:
        out = 0
        for block in blocks:
            tasks.put(block)
            out += 1
            if out == depth:
                yield _next_result(results, worker)
                out -= 1
        tasks.put(None)
        for _ in range(out):
            yield _next_result(results, worker)
        worker.join()
    finally:
        if worker.is_alive():
            worker.terminate()
            worker.join()
        for channel in (tasks, results):
            channel.cancel_join_thread()  # what the stopped worker never read may stay
            channel.close()


def _next_result(results: "Queue[Any]", worker: BaseProcess) -> Any:
    while True:
        try:
            ok, value = results.get(timeout=_ALIVE_CHECK)
        except queue.Empty:
            if worker.exitcode is not None:
                raise WorkerFailed(
                    f"the worker process stopped (exit code {worker.exitcode})"
                ) from None
            continue
        if ok:
            return value
        raise value


def _serve(
    function: Callable[[Any, Any], Any],
    setup: Any,
    initializer: Callable[[], object] | None,
    tasks: "Queue[Any]",
    results: "Queue[Any]",
) -> None:
    """The worker's loop: one result per block until None."""
    if initializer is not None:
        initializer()
    while (block := tasks.get()) is not None:
        try:
            results.put((True, function(setup, block)))
        except Exception as error:
            results.put((False, _portable(error)))
            return


def _portable(error: Exception) -> Exception:
    """The error itself if it survives pickling, else WorkerFailed with its traceback."""
    try:
        ForkingPickler.loads(ForkingPickler.dumps(error))
    except Exception:
        return WorkerFailed("".join(traceback.format_exception(error)))
    return error

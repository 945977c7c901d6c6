"""cdp.worker: blocks computed in a spawned process come back in order; its errors, its
death and an early stop are all handled."""

import multiprocessing
import os
import signal
import threading
from typing import Any

import pytest

from cdp.worker import WorkerFailed, mapped_in_worker


def scaled(factor: int, block: list[int]) -> list[int]:
    return [factor * value for value in block]


def fails_on_negative(_: None, block: list[int]) -> int:
    if min(block) < 0:
        raise ValueError(f"negative value in block starting {block[0]}")
    return sum(block)


class Unpicklable(Exception):
    def __init__(self, handle: Any) -> None:
        super().__init__("holds a lock")
        self.handle = handle


def raises_unpicklable(_: None, block: list[int]) -> None:
    raise Unpicklable(threading.Lock())


def dies(_: None, block: list[int]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_results_come_back_in_order_for_more_blocks_than_the_depth() -> None:
    blocks = [[number, number + 1] for number in range(0, 40, 2)]
    results = list(mapped_in_worker(scaled, 3, blocks, depth=2))
    assert results == [[3 * a, 3 * b] for a, b in blocks]
    assert not multiprocessing.active_children()


def test_no_blocks_no_results() -> None:
    assert list(mapped_in_worker(scaled, 3, [])) == []


def test_an_error_in_the_worker_is_raised_as_itself_after_the_results_before_it() -> None:
    results = []
    with pytest.raises(ValueError, match="negative value in block starting 5"):
        for result in mapped_in_worker(fails_on_negative, None, [[1, 2], [3, 4], [5, -6]]):
            results.append(result)
    assert results == [3, 7]
    assert not multiprocessing.active_children()


def test_an_error_that_cannot_be_pickled_comes_back_with_its_traceback() -> None:
    with pytest.raises(WorkerFailed, match="Unpicklable: holds a lock"):
        list(mapped_in_worker(raises_unpicklable, None, [[1]]))


def test_a_worker_that_dies_is_reported_instead_of_waited_for_forever() -> None:
    with pytest.raises(WorkerFailed, match="exit code -9"):
        list(mapped_in_worker(dies, None, [[1], [2]]))
    assert not multiprocessing.active_children()


def test_stopping_early_stops_the_worker() -> None:
    results = mapped_in_worker(scaled, 2, ([n] for n in range(1_000_000)), depth=2)
    assert next(results) == [0]
    results.close()
    assert not multiprocessing.active_children()

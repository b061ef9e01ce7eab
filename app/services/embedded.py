"""Embedded task execution: no broker, the tasks' own code (app.services.tasks, the table a
Celery worker registers too) runs on threads in the API, with the API's runtime.

One process owns the DuckDB file, so API reads and pipeline runs share one database
instance and never lock each other out. Countdown sends (webhook retries) wait in a heap.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedDispatcher:
    kind = "embedded"

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="idr-worker")
        self._heap: list[tuple[float, int, str, list[Any]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stopped = False
        self._timer = threading.Thread(target=self._loop, name="idr-scheduler", daemon=True)
        self._timer.start()

    def send(self, task: str, args: list[Any], countdown: float | None = None) -> None:
        if countdown and countdown > 0:
            with self._cv:
                heapq.heappush(self._heap, (time.monotonic() + countdown, next(self._seq), task, list(args)))
                self._cv.notify()
            return
        self._submit(task, args)

    def _submit(self, task: str, args: list[Any]) -> None:
        if self._stopped:
            return
        self._pool.submit(self._execute, task, list(args))

    @staticmethod
    def _execute(task: str, args: list[Any]) -> None:
        from app.services.tasks import TASKS

        try:
            TASKS[task](*args)
        except Exception:  # a task failure must not kill the worker thread
            log.exception("embedded task %s%s failed", task, tuple(args))

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = (self._heap[0][0] - time.monotonic()) if self._heap else None
                    self._cv.wait(timeout)
                if self._stopped:
                    return
                _, _, task, args = heapq.heappop(self._heap)
            self._submit(task, args)

    def ping(self) -> None:
        if self._stopped or not self._timer.is_alive():
            raise RuntimeError("embedded worker is stopped")

    def close(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        # Running pipelines finish (publish is atomic either way); queued ones are dropped
        # and re-sent from the state DB at the next start.
        self._pool.shutdown(wait=True, cancel_futures=True)

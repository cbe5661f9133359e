"""Worker threads that run a scan's requests, at most ``concurrency`` at a time.

- Threads are pooled per backend (starting one costs more than a loopback request) and
  bounded: at most ``MAX_THREADS`` exist; a scan that finds none free waits for one.
- The calling (PostgreSQL) thread only waits and polls ``check_interrupts`` every
  ``POLL_S``: a thread blocked in a socket read never sees statement_timeout or
  pg_cancel_backend, the poll does.
- On a cancel the caller runs ``on_cancel`` (which aborts the requests in flight), hands
  out no more tasks and waits briefly for the workers to return, so that no request or
  retry outlives the statement.
- Worker threads never touch plpy, and start with every signal blocked, so PostgreSQL's
  handlers (statement_timeout's SIGALRM, cancel's SIGINT) always run in the backend thread.
"""

from __future__ import annotations

import queue
import signal
import threading

POLL_S = 0.05
MAX_THREADS = 256  # the highest `concurrency` option
CANCEL_GRACE_S = 2.0  # how long a cancel waits for aborted requests to return


def _no_interrupts() -> None:
    return None


class _PooledThread:
    def __init__(self):
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="pg_llm-request", daemon=True)

    def _run(self) -> None:
        while True:
            self.inbox.get()(self)

    def release(self) -> None:
        """Back to the idle list. Called by the job itself before it reports completion:
        once the scan returns, the backend holds the GIL until its next Python call."""
        with _pool_changed:
            _idle.append(self)
            _pool_changed.notify()


_idle: list[_PooledThread] = []
_threads: list[_PooledThread] = []
_pool_changed = threading.Condition()


def thread_count() -> int:
    """Worker threads alive in this process (idle or busy)."""
    with _pool_changed:
        return len(_threads)


def _take_threads(count: int, check_interrupts) -> list[_PooledThread]:
    """Up to ``count`` free threads, at least one: idle ones first, new ones while fewer
    than MAX_THREADS exist. A thread still busy with a cancelled scan is not free."""
    while True:
        with _pool_changed:
            taken = [_idle.pop() for _ in range(min(count, len(_idle)))]
            fresh = [_PooledThread() for _ in range(min(count - len(taken),
                                                        MAX_THREADS - len(_threads)))]
            _threads.extend(fresh)
            if not (taken or fresh):
                _pool_changed.wait(POLL_S)
        if fresh:
            previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            try:
                for pooled in fresh:
                    pooled.thread.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        if taken or fresh:
            return taken + fresh
        check_interrupts()


def run_in_workers(tasks: list, concurrency: int, check_interrupts=None, on_cancel=None) -> list:
    """Run callables in at most ``concurrency`` pooled threads; return results in order.

    The calling thread only waits and polls ``check_interrupts`` (which raises on a cancel).
    The first task error stops the hand-out of further tasks and is re-raised here.
    """
    check_interrupts = check_interrupts or _no_interrupts
    if not tasks:
        return []
    results: list = [None] * len(tasks)
    state = {"next": 0, "remaining": len(tasks), "error": None, "workers": 0}
    lock = threading.Lock()
    finished = threading.Event()
    all_returned = threading.Event()
    stop = threading.Event()

    def worker(pooled: _PooledThread) -> None:
        try:
            while not stop.is_set():
                with lock:
                    index = state["next"]
                    if index >= len(tasks):
                        return
                    state["next"] = index + 1
                try:
                    results[index] = tasks[index]()
                except BaseException as exc:  # handed to the calling thread, which re-raises it
                    with lock:
                        if state["error"] is None and not stop.is_set():
                            state["error"] = exc
                    stop.set()
                    return
                with lock:
                    state["remaining"] -= 1
        finally:
            pooled.release()
            with lock:
                state["workers"] -= 1
                if state["remaining"] == 0 or state["error"] is not None or stop.is_set():
                    finished.set()
                if state["workers"] == 0:
                    all_returned.set()

    threads = _take_threads(max(1, min(concurrency, len(tasks))), check_interrupts)
    state["workers"] = len(threads)
    for thread in threads:
        thread.inbox.put(worker)
    try:
        while not finished.wait(POLL_S):
            check_interrupts()
    except BaseException:
        stop.set()  # a cancel: start no more requests (and no retries) ...
        if on_cancel is not None:
            on_cancel()  # ... abort those in flight ...
            all_returned.wait(CANCEL_GRACE_S)  # ... and let the workers see it (GIL)
        raise
    if state["error"] is not None:
        if on_cancel is not None:
            on_cancel()  # the scan fails: the other requests in flight are not needed
        raise state["error"]
    return results

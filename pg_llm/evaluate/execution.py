"""Execution match: run the gold query and each generated query on the same small database.

Per data row, inside the caller's transaction (nothing here ever commits):

1. a subtransaction creates a throwaway schema, grants USAGE and CREATE on it to
   ``llm_eval_reader`` and runs the row's ``setup_sql`` there *as the reader*
   (``llm._eval_setup_as_reader``): a data row may come from anyone, so it never runs with
   the caller's privileges (docs/security.md, point 4);
2. every query runs through ``llm._eval_run_as_reader``: SECURITY DEFINER owned by the
   reader (which also blocks ``set_config('role', ...)``), ``SET transaction_read_only = on``
   for its duration (a subtransaction cannot turn that off), the text wrapped as a subquery
   so only one SELECT can run; each in its own subtransaction so an error is contained, and
   under a deadline;
3. the outer subtransaction is rolled back: schema, data and grants vanish. Prepared
   statements are the one thing a rollback keeps: any the example's SQL created, replaced
   or removed is deallocated and the evaluation stops (``_check_prepared_statements``).

Why a kernel timer instead of ``SET LOCAL statement_timeout``: PostgreSQL arms the
statement timer once per top-level statement, so changing it inside ``llm_evaluate`` never
stops a query already running inside the function. The timer sends this backend SIGINT,
exactly what ``pg_cancel_backend`` does, and the query fails with 57014.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import json
import os
import signal
from collections import Counter
from dataclasses import dataclass, field

from pg_llm.evaluate.metrics import executable_sql, has_top_level_order_by

READER_ROLE = "llm_eval_reader"
# Results larger than this are not compared (and cannot pull a huge result into Python).
MAX_RESULT_ROWS = 10000
# Floats are compared after rounding to this many significant digits.
SIGNIFICANT_DIGITS = 9

_schema_counter = itertools.count(1)


class _Discard(Exception):
    """Raised to roll back a sandbox subtransaction on purpose."""


@dataclass
class QueryOutcome:
    rows: list[tuple] | None = None  # canonical rows, None when the query did not run
    error: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rows is not None


@dataclass
class ItemResult:
    """What happened to one data row: its gold query and every model's answer."""
    gold: QueryOutcome
    answers: list[AnswerResult] = field(default_factory=list)

    @property
    def executable(self) -> bool:
        return self.gold.ok


@dataclass
class AnswerResult:
    executed_ok: bool | None  # None: not executable (gold failed or no setup)
    execution_match: bool | None
    error: str | None = None


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class _Sigevent(ctypes.Structure):
    # Linux layout: sigval, signo, notify, then padding up to 64 bytes.
    _fields_ = [("sigev_value", ctypes.c_void_p), ("sigev_signo", ctypes.c_int),
                ("sigev_notify", ctypes.c_int), ("_pad", ctypes.c_int * 12)]


_CLOCK_MONOTONIC = 1
_SIGEV_SIGNAL = 0
_timer_id = None  # one POSIX timer per backend, created on first use, always left disarmed


def _cancel_timer():
    """A kernel timer that sends this backend SIGINT (what pg_cancel_backend sends).

    A Python thread cannot do this: PL/Python keeps the GIL while SPI runs a query, so the
    thread would only wake up after the query it should stop.
    """
    global _timer_id
    if _timer_id is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        event = _Sigevent(sigev_signo=signal.SIGINT, sigev_notify=_SIGEV_SIGNAL)
        timer = ctypes.c_void_p()
        if libc.timer_create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer)) != 0:
            raise OSError(ctypes.get_errno(), "timer_create failed")
        libc.timer_settime.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                       ctypes.POINTER(_Itimerspec), ctypes.POINTER(_Itimerspec)]
        _timer_id = (libc, timer)
    return _timer_id


class QueryDeadline:
    """Cancels this backend's running statement after ``timeout_ms`` unless exited first.

    Disarming returns the timer's previous value atomically, so ``fired`` tells for sure
    whether the SIGINT was sent (and must be absorbed if the query finished anyway).
    """

    def __init__(self, timeout_ms: int):
        self.timeout_ms = timeout_ms
        self.fired = False

    def _set(self, seconds: float) -> _Itimerspec:
        libc, timer = _cancel_timer()
        new = _Itimerspec(it_value=_Timespec(int(seconds), int((seconds % 1) * 1e9)))
        old = _Itimerspec()
        if libc.timer_settime(timer, 0, ctypes.byref(new), ctypes.byref(old)) != 0:
            raise OSError(ctypes.get_errno(), "timer_settime failed")
        return old

    def __enter__(self) -> "QueryDeadline":
        self._set(self.timeout_ms / 1000.0)
        return self

    def __exit__(self, *exc) -> None:
        old = self._set(0.0)  # disarm
        self.fired = old.it_value.tv_sec == 0 and old.it_value.tv_nsec == 0


def _absorb_pending_cancel(plpy) -> None:
    """The deadline fired just as the query finished: take the pending cancel here."""
    try:
        with plpy.subtransaction():
            plpy.execute("SELECT pg_catalog.pg_sleep(0)")
    except plpy.spiexceptions.QueryCanceled:
        pass


def _error_text(exc) -> str:
    sqlstate = getattr(exc, "sqlstate", None)
    message = str(exc.args[0] if exc.args else exc).splitlines()[0]
    return f"{sqlstate}: {message}" if sqlstate else message


def run_guarded(plpy, timeout_ms: int, action) -> QueryOutcome:
    """Run ``action()`` in a subtransaction under a deadline; errors become the outcome.

    Only errors of the evaluated SQL are contained: a cancel that is not ours (the user's
    statement_timeout, pg_cancel_backend) propagates and stops the whole evaluation.
    """
    deadline = QueryDeadline(timeout_ms)
    timed_out = QueryOutcome(error=f"57014: stopped after {timeout_ms} ms", timed_out=True)
    try:
        with plpy.subtransaction():
            with deadline:
                rows = action()
        outcome = QueryOutcome(rows=rows)
    except plpy.spiexceptions.QueryCanceled:
        if not deadline.fired:
            raise  # not ours: the user's statement_timeout or pg_cancel_backend
        return timed_out
    except plpy.SPIError as exc:
        outcome = QueryOutcome(error=_error_text(exc))
    if deadline.fired:
        # The timer expired just as the statement ended: its SIGINT is still pending.
        _absorb_pending_cancel(plpy)
        return timed_out
    return outcome


# -- result comparison -----------------------------------------------------------------
def _canonical_value(value):
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", float(f"{float(value):.{SIGNIFICANT_DIGITS}g}"))
    if isinstance(value, str):
        return ("text", value)
    return ("json", json.dumps(value, sort_keys=True))


def _values_in_order(pairs):
    # row_to_json objects keep duplicate column names; only the values (in order) matter.
    return [value for _, value in pairs]


def parse_rows(json_rows: list[str]) -> list[tuple]:
    """Rows as returned by llm._eval_run_as_reader -> tuples of canonical values."""
    rows = []
    for text in json_rows:
        values = json.loads(text, object_pairs_hook=_values_in_order)
        rows.append(tuple(_canonical_value(v) for v in values))
    return rows


def results_match(gold: list[tuple], candidate: list[tuple], *, ordered: bool) -> bool:
    """Same rows (NULL-safe, floats rounded); as a list when order matters, else a multiset.
    Column names are ignored, column order is not."""
    if ordered:
        return gold == candidate
    return Counter(gold) == Counter(candidate)


# -- the sandbox -----------------------------------------------------------------------
def _prepared_statements(plpy) -> set[tuple]:
    return {(r["name"], r["statement"], r["prepare_time"]) for r in plpy.execute(
        "SELECT name, statement, prepare_time::text FROM pg_catalog.pg_prepared_statements")}


def _check_prepared_statements(plpy, before: set[tuple]) -> None:
    """PREPARE and DEALLOCATE outlive a rollback, and a prepared statement runs as whoever
    executes it: an example's SQL that replaced one of the client's (psycopg's _pg3_0, ...)
    would run its query as the caller. Deallocate what changed and stop the evaluation."""
    after = _prepared_statements(plpy)
    if after == before:
        return
    for name, _, _ in after - before:
        plpy.execute(f"DEALLOCATE {plpy.quote_ident(name)}")
    from pg_llm.errors import LlmError
    raise LlmError("an evaluation example changed this session's prepared statements",
                   sqlstate="42501",
                   detail="its setup_sql or a query ran PREPARE or DEALLOCATE; the statements "
                          "it made were deallocated",
                   hint="remove PREPARE/DEALLOCATE from the data set; reconnect if the "
                        "client's own prepared statements are gone")


class Sandbox:
    """Runs the gold query and the answers of one data row on the row's own database."""

    def __init__(self, plpy, timeout_ms: int):
        self.plpy = plpy
        self.timeout_ms = timeout_ms
        self._run_plan = plpy.prepare("SELECT llm._eval_run_as_reader($1, $2) AS row",
                                      ["text", "int"])
        self._setup_plan = plpy.prepare("SELECT llm._eval_setup_as_reader($1, $2)",
                                        ["text", "name"])

    def _query(self, sql: str) -> QueryOutcome:
        def action():
            result = self.plpy.execute(self._run_plan, [sql, MAX_RESULT_ROWS + 1])
            return [r["row"] for r in result]

        outcome = run_guarded(self.plpy, self.timeout_ms, action)
        if outcome.ok:
            if len(outcome.rows) > MAX_RESULT_ROWS:
                return QueryOutcome(error=f"result has more than {MAX_RESULT_ROWS} rows")
            outcome.rows = parse_rows(outcome.rows)
        return outcome

    def _setup(self, schema: str, setup_sql: str | None) -> QueryOutcome:
        plpy = self.plpy
        quoted = plpy.quote_ident(schema)
        # pg_temp last: a temporary table of the caller must not shadow a sandbox table.
        path = f"SET LOCAL search_path = {quoted}, pg_temp"
        plpy.execute(f"CREATE SCHEMA {quoted}")
        plpy.execute(path)
        plpy.execute(f"GRANT USAGE, CREATE ON SCHEMA {quoted} TO {READER_ROLE}")
        if setup_sql and setup_sql.strip():
            def run_setup():
                # As the reader; every statement of the text runs (EXECUTE in PL/pgSQL).
                plpy.execute(self._setup_plan, [setup_sql, schema])
                return []

            outcome = run_guarded(plpy, self.timeout_ms, run_setup)
            if not outcome.ok:
                return QueryOutcome(error=f"setup_sql failed: {outcome.error}")
        return QueryOutcome(rows=[])

    def score(self, setup_sql: str | None, gold_sql: str,
              answers: list[str | None]) -> ItemResult:
        """Gold + every answer, all rolled back afterwards."""
        result: ItemResult | None = None
        schema = f"llm_eval_{os.getpid()}_{next(_schema_counter)}"
        prepared = _prepared_statements(self.plpy)
        try:
            with self.plpy.subtransaction():
                ready = self._setup(schema, setup_sql)
                if not ready.ok:
                    result = ItemResult(gold=ready, answers=[
                        AnswerResult(None, None, ready.error) for _ in answers])
                    raise _Discard
                gold = self._query(executable_sql(gold_sql) or "")
                ordered = gold.ok and has_top_level_order_by(gold_sql)
                result = ItemResult(gold=gold)
                for answer in answers:
                    result.answers.append(self._score_answer(gold, answer, ordered))
                raise _Discard
        except _Discard:
            pass
        finally:
            _check_prepared_statements(self.plpy, prepared)
        return result

    def _score_answer(self, gold: QueryOutcome, answer: str | None, ordered: bool) -> AnswerResult:
        if not gold.ok:
            return AnswerResult(None, None, f"gold query failed: {gold.error}")
        sql = executable_sql(answer)
        if sql is None:
            return AnswerResult(False, False, "empty answer")
        outcome = self._query(sql)
        if not outcome.ok:
            return AnswerResult(False, False, outcome.error)
        return AnswerResult(True, results_match(gold.rows, outcome.rows, ordered=ordered))

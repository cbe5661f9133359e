"""EchoTable: a diagnostic wrapper that returns the quals it received, as rows.

Use it to see what the C bridge pushes down, without any model or HTTP:

    CREATE SERVER echo FOREIGN DATA WRAPPER pg_llm
        OPTIONS (wrapper 'pg_llm.testing.echo.EchoTable');
    CREATE FOREIGN TABLE echo_t (content text, answer text, quals text, calls int,
                                 needed text) SERVER echo OPTIONS (prompt_columns 'content');
    SELECT content, quals FROM echo_t WHERE content = ANY('{a,b}');

One row per combination of the values given to the constrained columns, each holding those
values unchanged. Special columns, filled when the table has them: ``quals`` (JSON of the
quals received), ``calls`` (execute() calls made by this instance so far, per backend),
``needed`` (comma list of the columns the query reads), ``answer`` ("echo: " + the values),
``options`` (JSON of the merged server, table and user-mapping options it was built with).
Table or server options:
  ``prompt_columns``  columns that need a value: otherwise MissingPromptValue (22004)
  ``sleep_ms``        wait that long per call, polling check_for_interrupts()
  ``rows``            rows returned when no column is constrained (default 1)
  ``error_sqlstate``, ``error_message``, ``error_hint``, ``error_detail``: raise an LlmError
  ``python_error``    raise a plain Python exception (a wrapper bug) with this message
"""

from __future__ import annotations

import itertools
import json

from pg_llm.errors import LlmError, MissingPromptValue
from pg_llm.interrupts import sleep
from pg_llm.multicorn import ForeignDataWrapper

SPECIAL_COLUMNS = ("quals", "calls", "needed", "answer", "options")


class EchoTable(ForeignDataWrapper):
    def __init__(self, options, columns):
        super().__init__(options, columns)
        self.options = dict(options)  # the real Multicorn's base class keeps no copy
        self.columns = columns
        self.calls = 0
        self.sleep_ms = int(options.get("sleep_ms", "0"))
        self.default_rows = int(options.get("rows", "1"))
        self.prompt_columns = [c.strip() for c in options.get("prompt_columns", "").split(",")
                               if c.strip()]

    def execute(self, quals, columns):
        self.calls += 1
        if self.sleep_ms:
            sleep(self.sleep_ms / 1000.0)
        self._raise_requested_error()

        allowed = self._allowed_values(quals)
        missing = [c for c in self.prompt_columns if c not in allowed]
        if missing:
            raise MissingPromptValue(
                f'no value for prompt column "{missing[0]}"',
                detail=f"quals received: {self._quals_json(quals)}",
                hint=f"Add WHERE {missing[0]} = '...' or join on {missing[0]}.")

        names = [name for name in self.columns if name in allowed]
        combos = list(itertools.product(*(allowed[n] for n in names))) if names \
            else [()] * self.default_rows
        rows = []
        for combo in combos:
            row = dict(zip(names, combo))
            self._fill_special(row, quals, columns, combo)
            rows.append(row)
        return rows

    @staticmethod
    def _allowed_values(quals) -> dict:
        """Per column, the values every qual on it allows (in first-seen order)."""
        allowed: dict[str, list] = {}
        for q in quals:
            if q.operator == "=":
                values = [q.value]
            elif q.operator == ("=", True):
                values = list(q.value)
            else:
                continue
            values = [v for v in values if v is not None]
            if q.field_name in allowed:
                values = [v for v in allowed[q.field_name] if v in values]
            allowed[q.field_name] = values
        return allowed

    def _fill_special(self, row, quals, needed, combo):
        specials = {
            "quals": lambda: self._quals_json(quals),
            "calls": lambda: self.calls,
            "needed": lambda: ",".join(sorted(needed)),
            "answer": lambda: "echo: " + " | ".join(str(v) for v in combo),
            "options": lambda: json.dumps(self.options, sort_keys=True),
        }
        for name, value in specials.items():
            if name in self.columns and name not in row:
                row[name] = value()

    @staticmethod
    def _quals_json(quals) -> str:
        return json.dumps([{"field": q.field_name,
                            "op": "= ANY" if isinstance(q.operator, tuple) else q.operator,
                            "value": q.value} for q in quals])

    def _raise_requested_error(self):
        opts = self.options
        if "error_sqlstate" in opts or "error_message" in opts:
            raise LlmError(opts.get("error_message", "echo error"),
                           sqlstate=opts.get("error_sqlstate"),
                           detail=opts.get("error_detail"), hint=opts.get("error_hint"))
        if "python_error" in opts:
            raise ValueError(opts["python_error"])

"""Entry point of the C bridge: a JSON payload in, rows as lists of text out.

``llm._fdw_execute(payload)`` calls ``execute_scan``; the payload is described in
docs/architecture.md ("The C bridge <-> Python contract"). This module turns it into the
Multicorn API (``Qual``, ``ColumnDefinition``, ``execute(quals, columns)``) so the wrapper
classes run unchanged under Multicorn2 too.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass

from pg_llm import scan_context
from pg_llm.catalog import models as model_catalog
from pg_llm.errors import InvalidParameter, LlmError
from pg_llm.multicorn import ColumnDefinition, Qual

DEFAULT_WRAPPER = "pg_llm.fdw.ModelTable"

# One wrapper instance per (table, options) per backend: wrappers cache clients.
_instances: dict[tuple, object] = {}

_INT_TYPES = {"smallint", "integer", "bigint"}
_FLOAT_TYPES = {"real", "double precision"}


@dataclass
class ScanRequest:
    relid: int
    table: str
    user: str | None
    options: dict
    columns: list[dict]
    needed: list[str]
    quals: list[Qual]
    limits: dict | None = None  # per-statement spending guards, when set (pg_llm.spending)

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]

    @classmethod
    def parse(cls, payload: str) -> "ScanRequest":
        doc = json.loads(payload)
        types = {c["name"]: c["type"] for c in doc["columns"]}
        quals = []
        for q in doc.get("quals") or []:
            convert = _value_converter(types.get(q["field"], "text"))
            if q["op"] == "= ANY":
                quals.append(Qual(q["field"], ("=", True), [convert(v) for v in q["value"]]))
            else:
                quals.append(Qual(q["field"], q["op"], convert(q["value"])))
        return cls(relid=doc["relid"], table=doc["table"], user=doc.get("user"),
                   options=dict(doc.get("options") or {}), columns=doc["columns"],
                   needed=list(doc.get("needed") or []), quals=quals,
                   limits=doc.get("limits"))


def _value_converter(type_name: str):
    """Give wrappers Python values for the simple types, as Multicorn does."""
    if type_name in _INT_TYPES:
        return lambda v: None if v is None else int(v)
    if type_name in _FLOAT_TYPES:
        return lambda v: None if v is None else float(v)
    if type_name == "numeric" or type_name.startswith("numeric("):
        from decimal import Decimal  # only tables with numeric columns pay the import

        return lambda v: None if v is None else Decimal(v)
    if type_name == "boolean":
        return lambda v: None if v is None else v == "t"
    return lambda v: v


def _wrapper_class(path: str):
    if not path.startswith("pg_llm."):  # the validator checks too; the cost is nil
        raise InvalidParameter(f"invalid wrapper class {path!r}",
                               hint="Use a class shipped with pg_llm, e.g. 'pg_llm.fdw.ModelTable'.")
    module_name, _, class_name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise InvalidParameter(f"wrapper class {path!r} cannot be loaded: {exc}",
                               hint="Check the server option wrapper and that the backend "
                                    "package is installed (make backend-python).") from None


def wrapper_for(request: ScanRequest):
    """The cached wrapper instance for this table and these options."""
    options = dict(request.options)
    class_path = options.pop("wrapper", DEFAULT_WRAPPER)
    # ALTER ... OPTIONS or ALTER TABLE changes the key, so a stale instance is never reused
    key = (request.relid, class_path, tuple(sorted(options.items())),
           tuple((c["name"], c["type"]) for c in request.columns))
    instance = _instances.get(key)
    if instance is None:
        columns = {c["name"]: ColumnDefinition(c["name"], type_name=c["type"],
                                               base_type_name=c["type"])
                   for c in request.columns}
        instance = _wrapper_class(class_path)(options, columns)
        # options changed (ALTER ... OPTIONS): drop the stale instances of this table
        for stale in [k for k in _instances if k[0] == request.relid]:
            del _instances[stale]
        _instances[key] = instance
    return instance


def to_text(value) -> str | None:
    """A Python value as PostgreSQL input text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, allow_nan=False)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    import datetime  # imported already where such a value exists; not on the common path

    if isinstance(value, (datetime.date, datetime.time, datetime.datetime)):
        return value.isoformat()
    return str(value)  # also decimal.Decimal


def row_to_text(row, column_names: list[str]) -> list[str | None]:
    """A dict (Multicorn style) or a sequence in column order -> one text per column."""
    if isinstance(row, dict):
        return [to_text(row.get(name)) for name in column_names]
    values = list(row)
    if len(values) != len(column_names):
        raise LlmError(f"wrapper returned a row of {len(values)} values for "
                       f"{len(column_names)} columns", sqlstate="HV000",
                       hint="Return a dict keyed by column name, or one value per column.")
    return [to_text(v) for v in values]


def run_scan(request: ScanRequest) -> list[list[str | None]]:
    """Run the wrapper for one scan; plain Python, testable without a database."""
    table = wrapper_for(request)
    scan_context.current_request = request
    try:
        # A list, not a generator: errors raised while PL/Python iterates lose their message.
        rows = list(table.execute(request.quals, set(request.needed)) or [])
    finally:
        scan_context.current_request = None
    names = request.column_names
    return [row_to_text(row, names) for row in rows]


def catalog_model(plpy, request: ScanRequest) -> str:
    """The model a scan is booked, cached and audited under: the catalog's name for this table
    (llm.models.relid), else the table's own qualified name; never the `model` option, which
    any role allowed to create a table on the engine can write (docs/security.md, point 2)."""
    return model_catalog.model_of_table(plpy, request.relid) or request.table


def execute_scan(payload: str) -> list[list[str | None]]:
    """Called by llm._fdw_execute: LlmError -> a SQL error with SQLSTATE, detail and hint."""
    import plpy

    from pg_llm.boot import raise_spi_error, raise_sql_error, sql_error

    try:
        request = ScanRequest.parse(payload)
        request.options["model"] = catalog_model(plpy, request)
        return run_scan(request)
    except plpy.SPIError as exc:  # cancellation (57014), a failed query: SQLSTATE kept
        raise_spi_error(plpy, exc)
    except (plpy.Error, plpy.Fatal):
        raise
    except LlmError as exc:
        raise_sql_error(plpy, exc)
    except Exception as exc:  # a wrapper bug: say where, keep an fdw_error SQLSTATE
        raise sql_error(plpy, f"pg_llm wrapper failed: {type(exc).__name__}: {exc}", "HV000",
                        None, "This is a bug in the wrapper class.") from None

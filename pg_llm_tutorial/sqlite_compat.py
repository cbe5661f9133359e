"""sql-create-context (SQLite-flavoured, no data) -> PostgreSQL examples with a small database.

The shared data set (``../shared/datasets/sql-create-context``) has ``{question, context,
answer}`` rows: ``context`` is CREATE TABLE statement(s) with VARCHAR/INTEGER columns,
``answer`` the reference query written for SQLite: double-quoted string literals, numbers
compared with VARCHAR columns, SUM/AVG over VARCHAR. ``convert_example`` turns a row into
what the tutorial uses (``content`` = DDL + question, ``gold_sql``, ``setup_sql``):

- DDL and query are transpiled by sqlglot (sqlite -> postgres); a double-quoted name that is
  not a column, table or alias becomes a string literal (SQLite's own fallback rule);
- a number compared with a VARCHAR column becomes a string ('9'), which is what SQLite's
  type affinity does (TEXT affinity is applied to the literal); SUM/AVG over a VARCHAR column
  casts it to numeric;
- ``setup_sql`` creates the tables and inserts a few synthetic rows derived from the gold
  query's conditions: two rows meeting every condition, one row per condition that meets all
  but that one, and one unrelated row. A query that drops or changes a condition, picks
  another column or aggregate, therefore returns a different result, so execution match
  means something without the original databases.

Training rows must be converted the same way (same DDL, same literal style) so that a model
fine-tuned on ``train.jsonl`` writes PostgreSQL. Queries the row builder does not understand
(OR, subqueries, HAVING...) still get rows; their gold result may be empty, which
``check_examples`` reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .generator import user_message

INTEGER_TYPES = {"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT"}
NUMERIC_TYPES = INTEGER_TYPES | {"DECIMAL", "NUMERIC", "FLOAT", "DOUBLE", "REAL", "MONEY"}


@dataclass
class SharedExample:
    id: int
    question: str
    ddl: str           # PostgreSQL CREATE TABLE statements, each ending with ';'
    content: str       # the user message: DDL, then "-- question" (same as the demo's)
    gold_sql: str      # PostgreSQL
    setup_sql: str     # CREATE TABLE + INSERT (unqualified names)


@dataclass
class Schema:
    tables: dict[str, dict[str, str]]  # lower table name -> {lower column: type name}
    names: dict[str, str]              # lower name -> name as written (tables and columns)

    def column_type(self, table: str | None, column: str) -> str | None:
        if table and table in self.tables:
            return self.tables[table].get(column)
        for columns in self.tables.values():
            if column in columns:
                return columns[column]
        return None

    def table_of(self, column: str) -> str | None:
        for table, columns in self.tables.items():
            if column in columns:
                return table
        return None


class ConversionError(ValueError):
    pass


# -- DDL ---------------------------------------------------------------------------------------
def parse_schema(context: str) -> tuple[Schema, str]:
    """The context's tables and their PostgreSQL DDL (one statement per line)."""
    try:
        statements = [s for s in sqlglot.parse(context, read="sqlite") if s is not None]
    except SqlglotError as exc:
        raise ConversionError(f"context does not parse: {exc}") from None
    tables: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    ddl = []
    for statement in statements:
        if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Schema):
            raise ConversionError("context is not only CREATE TABLE statements")
        table = statement.this.this.name
        columns = {}
        for column in statement.this.expressions:
            if isinstance(column, exp.ColumnDef):
                kind = column.args.get("kind")
                columns[column.name.lower()] = kind.this.name if kind is not None else "VARCHAR"
                names[column.name.lower()] = column.name
        tables[table.lower()] = columns
        names[table.lower()] = table
        ddl.append(statement.sql(dialect="postgres") + ";")
    if not tables:
        raise ConversionError("context has no CREATE TABLE")
    return Schema(tables, names), "\n".join(ddl)


# -- the query -----------------------------------------------------------------------------
def _aliases(tree: exp.Expression) -> dict[str, str]:
    """alias (lower) -> table (lower) for every aliased table in the query."""
    aliases = {}
    for table in tree.find_all(exp.Table):
        aliases[table.name.lower()] = table.name.lower()
        if table.alias:
            aliases[table.alias.lower()] = table.name.lower()
    return aliases


def _is_text(schema: Schema, aliases: dict, node) -> bool:
    if not isinstance(node, exp.Column):
        return False
    kind = schema.column_type(aliases.get(node.table.lower()) if node.table else None,
                              node.name.lower())
    return kind is not None and kind.upper() not in NUMERIC_TYPES


def to_postgres(answer: str, schema: Schema) -> str:
    """The SQLite reference query rewritten for PostgreSQL (see the module docstring)."""
    try:
        tree = sqlglot.parse_one(answer, read="sqlite")
    except SqlglotError as exc:
        raise ConversionError(f"query does not parse: {exc}") from None
    aliases = _aliases(tree)
    known = set(schema.names) | set(aliases)
    known |= {a.alias.lower() for a in tree.find_all(exp.Alias) if a.alias}
    for column in list(tree.find_all(exp.Column)):
        identifier = column.this
        if (isinstance(identifier, exp.Identifier) and identifier.quoted and not column.table
                and identifier.name.lower() not in known):
            column.replace(exp.Literal.string(identifier.name))
    comparisons = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
    for node in list(tree.find_all(*comparisons)):
        left, right = node.this, node.expression
        for column, literal, side in ((left, right, "expression"), (right, left, "this")):
            if (isinstance(literal, exp.Literal) and not literal.is_string
                    and _is_text(schema, aliases, column)):
                node.set(side, exp.Literal.string(literal.this))
    for function in list(tree.find_all(exp.Sum, exp.Avg)):
        argument = function.this
        if _is_text(schema, aliases, argument):
            argument.replace(exp.Cast(this=argument.copy(), to=exp.DataType.build("NUMERIC")))
    for ordered in tree.find_all(exp.Ordered):
        # PostgreSQL's own NULL placement: no NULLS FIRST/LAST clause for the model to learn.
        ordered.set("nulls_first", bool(ordered.args.get("desc")))
    return tree.sql(dialect="postgres")


# -- synthetic rows ----------------------------------------------------------------------------
@dataclass
class Condition:
    table: str
    column: str
    op: str            # = <> > >= < <= like in between null notnull
    value: object = None


def _literal_value(node):
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        value = _literal_value(node.this)
        return -value if isinstance(value, (int, Decimal)) else None
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        return node.this
    try:
        number = Decimal(node.this)
    except InvalidOperation:
        return None
    return int(number) if number == number.to_integral_value() else number


_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "=", "<>": "<>"}
_OPS = {exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}


def _conditions(tree: exp.Expression, schema: Schema) -> tuple[list[Condition], list]:
    """Column-vs-literal conditions of the WHERE conjunction, and column = column joins."""
    aliases = _aliases(tree)

    def resolve(column: exp.Column) -> tuple[str, str] | None:
        name = column.name.lower()
        table = aliases.get(column.table.lower()) if column.table else schema.table_of(name)
        if table is None or table not in schema.tables or name not in schema.tables[table]:
            return None
        return table, name

    conditions, joins = [], []
    parts = []
    where = tree.args.get("where")
    if where is not None:
        parts.extend(where.this.flatten() if isinstance(where.this, exp.And) else [where.this])
    for join in tree.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            parts.extend(on.flatten() if isinstance(on, exp.And) else [on])
    for part in parts:
        op = next((symbol for kind, symbol in _OPS.items() if isinstance(part, kind)), None)
        if op is not None:
            left, right = part.this, part.expression
            if isinstance(left, exp.Column) and isinstance(right, exp.Column):
                a, b = resolve(left), resolve(right)
                if a and b and op == "=":
                    joins.append((a, b))
                continue
            if not isinstance(left, exp.Column):
                left, right, op = right, left, _FLIP[op]
            target = resolve(left) if isinstance(left, exp.Column) else None
            value = _literal_value(right)
            if target and value is not None:
                conditions.append(Condition(*target, op, value))
        elif isinstance(part, (exp.Like, exp.ILike)) and isinstance(part.this, exp.Column):
            target, value = resolve(part.this), _literal_value(part.expression)
            if target and isinstance(value, str):
                conditions.append(Condition(*target, "like", value))
        elif isinstance(part, exp.In) and isinstance(part.this, exp.Column):
            target = resolve(part.this)
            values = [_literal_value(v) for v in part.expressions]
            if target and values and all(v is not None for v in values):
                conditions.append(Condition(*target, "in", values))
        elif isinstance(part, exp.Between) and isinstance(part.this, exp.Column):
            target = resolve(part.this)
            low, high = _literal_value(part.args.get("low")), _literal_value(part.args.get("high"))
            if target and low is not None and high is not None:
                conditions.append(Condition(*target, "between", (low, high)))
        elif isinstance(part, exp.Is) and isinstance(part.this, exp.Column):
            target = resolve(part.this)
            if target:
                conditions.append(Condition(*target, "null"))
        elif isinstance(part, exp.Not) and isinstance(part.this, exp.Is) \
                and isinstance(part.this.this, exp.Column):
            target = resolve(part.this.this)
            if target:
                conditions.append(Condition(*target, "notnull"))
    return conditions, joins


def _text_less(value: str) -> str:
    """A string sorting before ``value`` (byte order: a proper prefix is smaller)."""
    if len(value) > 1:
        return value[:-1]
    if value and ord(value[0]) > 33:
        return chr(ord(value[0]) - 1)
    return ""


def _holds(value, condition: Condition, numeric: bool) -> bool:
    """Whether ``value`` meets the condition, as PostgreSQL (C collation) would decide."""
    op, target = condition.op, condition.value
    if op == "null":
        return value is None
    if op == "notnull":
        return value is not None
    if value is None:
        return False
    if op == "like":
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in target)
        return re.fullmatch(pattern, str(value), re.DOTALL | re.IGNORECASE) is not None
    if op == "in":
        return any(_holds(value, Condition("", "", "=", v), numeric) for v in target)
    if op == "between":
        low, high = target
        return _holds(value, Condition("", "", ">=", low), numeric) and \
            _holds(value, Condition("", "", "<=", high), numeric)
    try:
        a, b = (Decimal(str(value)), Decimal(str(target))) if numeric else \
            (str(value).encode(), str(target).encode())
    except InvalidOperation:
        return False
    return {"=": a == b, "<>": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def _candidates(condition: Condition, numeric: bool, satisfy: bool) -> list:
    """Values to try for a column so the condition holds (or fails)."""
    op, v = condition.op, condition.value
    if op == "null":
        return [None] if satisfy else ["x"]
    if op == "notnull":
        return ["present", 1] if satisfy else [None]
    if op == "like":
        filled = v.replace("%", "").replace("_", "a")
        return [filled, v.replace("%", "a").replace("_", "a")] if satisfy else ["zzq", "0"]
    if op == "in":
        return list(v) if satisfy else (["zzq"] if not numeric else [max(Decimal(str(x)) for x in v) + 1])
    if op == "between":
        low, high = v
        return [low, high] if satisfy else ([Decimal(str(low)) - 1] if numeric else [_text_less(str(low))])
    if numeric:
        try:
            n = Decimal(str(v))
        except InvalidOperation:
            return [v]
        good = {"=": [n], "<>": [n + 1, n - 1], ">": [n + 1, n + 2], ">=": [n, n + 1],
                "<": [n - 1, n - 2], "<=": [n, n - 1]}
        bad = {"=": [n + 1], "<>": [n], ">": [n, n - 1], ">=": [n - 1], "<": [n, n + 1],
               "<=": [n + 1]}
        return (good if satisfy else bad)[op]
    s = str(v)
    good = {"=": [s], "<>": [s + " other"], ">": [s + "1", s + "2"], ">=": [s, s + "1"],
            "<": [_text_less(s)], "<=": [s, _text_less(s)]}
    bad = {"=": [s + " other"], "<>": [s], ">": [s, _text_less(s)], ">=": [_text_less(s)],
           "<": [s, s + "1"], "<=": [s + "1"]}
    return (good if satisfy else bad)[op]


def _pick(conditions: list[Condition], must_fail: Condition | None, numeric: bool, rank: int,
          integer: bool = False):
    """A value meeting every condition but ``must_fail`` (which it must break), or None."""
    wanted = [c for c in conditions if c is not must_fail]
    pools = [_candidates(c, numeric, True) for c in wanted]
    if must_fail is not None:
        pools.insert(0, _candidates(must_fail, numeric, False))
    seen = []
    for pool in pools:
        for value in pool:
            # An INTEGER column stores 4.2 as 4: try whole numbers around the candidate.
            options = [value]
            if integer and isinstance(value, (int, Decimal)):
                options = [int(Decimal(value).to_integral_value(rounding=r))
                           for r in ("ROUND_FLOOR", "ROUND_CEILING")]
            for option in options:
                if option not in seen:
                    seen.append(option)
    ok = [v for v in seen
          if all(_holds(v, c, numeric) for c in wanted)
          and (must_fail is None or not _holds(v, must_fail, numeric))]
    if not ok:
        return None
    return ok[rank % len(ok)]


def _sql_value(value, numeric: bool) -> str:
    if value is None:
        return "NULL"
    if numeric:
        try:
            return str(Decimal(str(value)))
        except InvalidOperation:
            return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def build_setup_sql(schema: Schema, ddl: str, gold_sql: str) -> str:
    """DDL + INSERTs of synthetic rows for which ``gold_sql`` has a meaningful result."""
    try:
        tree = sqlglot.parse_one(gold_sql, read="postgres")
    except SqlglotError:
        tree = None
    conditions, joins = _conditions(tree, schema) if tree is not None else ([], [])
    # Row i of every table forms one "joined row": join columns share the key k{i}.
    join_columns = {col for pair in joins for col in pair}
    # Columns under MIN() get falling filler values, so rows a query should have excluded
    # would lower the minimum (rising values already raise MAX, SUM, AVG).
    falling = {column.name.lower() for function in (tree.find_all(exp.Min) if tree else [])
               for column in function.find_all(exp.Column)}
    by_column: dict[tuple[str, str], list[Condition]] = {}
    for condition in conditions:
        by_column.setdefault((condition.table, condition.column), []).append(condition)
    plans = [("target", None, 0), ("target", None, 1)]
    plans += [("miss", condition, 0) for condition in conditions]
    plans += [("other", None, 0)]
    rows: dict[str, list[list[str]]] = {table: [] for table in schema.tables}
    for index, (kind, missed, rank) in enumerate(plans):
        for table, columns in schema.tables.items():
            values = []
            for column, kind_name in columns.items():
                numeric = kind_name.upper() in NUMERIC_TYPES
                integer = kind_name.upper() in INTEGER_TYPES
                order = len(plans) - index - 1 if column in falling else index
                key = (table, column)
                value = None
                if key in join_columns:
                    value = index + 1 if numeric else f"k{index + 1}"
                elif key in by_column and kind != "other":
                    fail = missed if missed is not None and missed in by_column[key] else None
                    value = _pick(by_column[key], fail, numeric, rank, integer)
                    if value is None and fail is None:
                        value = _filler(column, numeric, order)
                elif key in by_column:  # the unrelated row breaks every condition it can
                    value = _pick([], by_column[key][0], numeric, 0, integer)
                if value is None and key not in by_column:
                    value = _filler(column, numeric, order)
                values.append(_sql_value(value, numeric))
            rows[table].append(values)
    inserts = []
    for table, columns in schema.tables.items():
        names = ", ".join(_quote(schema.names[c]) for c in columns)
        values = ",\n  ".join("(" + ", ".join(r) + ")" for r in rows[table])
        inserts.append(f"INSERT INTO {_quote(schema.names[table])} ({names}) VALUES\n  {values};")
    return ddl + "\n" + "\n".join(inserts)


def _filler(column: str, numeric: bool, index: int):
    # Distinct per row, so picking another column or aggregate changes the result.
    return 10 * (index + 1) + len(column) % 7 if numeric else f"{column} {index + 1}"


def _quote(name: str) -> str:
    return exp.to_identifier(name).sql(dialect="postgres")


# -- whole examples ----------------------------------------------------------------------------
def convert_example(index: int, row: dict) -> SharedExample:
    """One jsonl row -> a PostgreSQL example; raises ConversionError when impossible."""
    schema, ddl = parse_schema(row["context"])
    gold = to_postgres(row["answer"], schema)
    return SharedExample(id=index, question=row["question"], ddl=ddl,
                         content=user_message(ddl, row["question"]), gold_sql=gold,
                         setup_sql=build_setup_sql(schema, ddl, gold))


def load_examples(path: str, limit: int | None = None) -> tuple[list[SharedExample], int]:
    """Converted examples of a jsonl file (first ``limit`` convertible ones) and how many
    rows were skipped because they could not be converted."""
    examples, skipped = [], 0
    with open(path, encoding="utf-8") as handle:
        for index, line in enumerate(handle, start=1):
            if limit is not None and len(examples) >= limit:
                break
            try:
                examples.append(convert_example(index, json.loads(line)))
            except (ConversionError, SqlglotError, KeyError, ValueError):
                skipped += 1
    return examples, skipped


def check_examples(conn, examples: list[SharedExample]) -> dict:
    """Run every setup + gold in a rolled-back transaction (psycopg, CLI side): how many
    golds run, and how many return at least one row (a meaningful execution check)."""
    counts = {"n": len(examples), "gold_ok": 0, "non_empty": 0}
    for example in examples:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("CREATE SCHEMA llm_check; SET LOCAL search_path = llm_check")
                conn.execute(example.setup_sql)
                rows = conn.execute(example.gold_sql).fetchall()
        except Exception:  # noqa: BLE001 - counting failures is the point here
            continue
        counts["gold_ok"] += 1
        counts["non_empty"] += bool(rows)
    return counts

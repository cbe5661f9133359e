"""Join inference: an answer that reads a column its FROM table does not have gets the join
the schema's foreign keys give (or, when its table has none of the columns it reads, the one
table that has them all).

Small models decide the tables of a query badly: asked for "farms with a parcel of loam soil"
they write ``SELECT DISTINCT farm_name FROM farm WHERE soil = 'L'`` (soil is a parcel's).
Text-to-SQL systems since IRNet and RAT-SQL do not let the model write the FROM clause at
all: it is inferred from the columns the query uses, along the foreign-key graph. This does
the same to a finished answer, only where the answer cannot run as written:

- one SELECT, one table in FROM, no JOIN, no subquery, no alias (anything else is returned
  unchanged: this is a repair for a common mistake, not a rewriter);
- every bare column is looked up in the schema: on the FROM table first, else on the table
  nearest to it along foreign keys that has it;
- if the FROM table has none of the columns and one other table has them all (and the query
  does not count rows of its table: ``COUNT(*)``, ``*``), that table replaces it;
- else the shortest foreign-key paths from the FROM table to each table needed become
  ``JOIN ... ON child.fk = parent.key``, every column is qualified, and where a join goes
  from a parent to its children (which repeats the parent's rows) a select list without an
  aggregate becomes DISTINCT.

Model option ``sql_join_inference`` (docs/sql-reference.md); the schema is the one the
``sql_grammar_from`` variable holds. Only light Python: the backend imports this.
"""

from __future__ import annotations

import collections
import functools
import re
from dataclasses import dataclass, field

from pg_llm import ddl as ddl_reader
from pg_llm.sql_grammar import KEYWORDS

_SQL_TOKEN = re.compile(r"""
      (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")+")
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<number>\d+(?:\.\d+)?)
    | (?P<punct><>|!=|<=|>=|\|\||::|[(),.;*=<>+\-/%])
    | (?P<other>\S)""", re.VERBOSE)
_KEYWORDS = {k.lower() for k in KEYWORDS}
# Where the FROM clause ends.
_CLAUSE_AFTER_FROM = {"where", "group", "order", "limit", "having", "offset", "union",
                      "intersect", "except", "fetch", "window"}
_AGGREGATES = {"count", "sum", "avg", "min", "max"}


@dataclass
class Schema:
    columns: dict[str, list[str]] = field(default_factory=dict)   # table -> its columns
    # (child table, child column, parent table, parent column)
    foreign_keys: list[tuple[str, str, str, str]] = field(default_factory=list)


@functools.lru_cache(maxsize=64)
def read_schema(ddl: str) -> Schema:
    """Tables, columns and foreign keys of the CREATE TABLE statements in `ddl` (inline
    ``REFERENCES p (c)`` and table-level ``FOREIGN KEY (a) REFERENCES p (b)``)."""
    schema = Schema()
    primary: dict[str, str] = {}
    pending: list[tuple[str, str, str, str | None]] = []
    for parts, elements in ddl_reader.statements(ddl):
        table = ddl_reader.name(*parts[-1])  # schema-qualified: the table's own name
        cols = schema.columns.setdefault(table, [])
        for element in elements:
            words = [t[1].lower() for t in element]
            if not ddl_reader.is_column(element):
                if words and words[0] in ("primary", "foreign", "constraint"):
                    _table_constraint(table, element, words, primary, pending)
                continue
            column = ddl_reader.name(*element[0])
            cols.append(column)
            if "primary" in words:
                primary[table] = column
            if "references" in words:
                k = words.index("references")
                parent = (ddl_reader.name(*element[k + 1]) if k + 1 < len(element)
                          else None)
                parent_col = (ddl_reader.name(*element[k + 3]) if k + 3 < len(element)
                              and element[k + 2][1] == "(" else None)
                if parent:
                    pending.append((table, column, parent, parent_col))
    for child, col, parent, parent_col in pending:
        parent_col = parent_col or primary.get(parent)
        if parent in schema.columns and parent_col:
            schema.foreign_keys.append((child, col, parent, parent_col))
    return schema


def _table_constraint(table, element, words, primary, pending):
    names = [ddl_reader.name(*t) for t in element]
    if "primary" in words:
        k = words.index("primary")
        if k + 3 < len(element) and element[k + 2][1] == "(":
            primary[table] = names[k + 3]
    if "foreign" in words and "references" in words:
        k = words.index("foreign")
        r = words.index("references")
        child_col = names[k + 3] if k + 3 < len(element) and element[k + 2][1] == "(" else None
        parent = names[r + 1] if r + 1 < len(element) else None
        parent_col = names[r + 3] if r + 3 < len(element) and element[r + 2][1] == "(" else None
        if child_col and parent:
            pending.append((table, child_col, parent, parent_col))


def infer_joins(sql: str, ddl: str) -> str:
    """`sql` with the FROM clause its columns need (see the module's docstring), or `sql`
    unchanged when it needs none or is outside what this repairs."""
    schema = read_schema(ddl)
    if len(schema.columns) < 2:
        return sql
    matches = list(_SQL_TOKEN.finditer(sql))
    tokens = [(m.lastgroup, m.group()) for m in matches]
    lower = [t[1].lower() if t[0] == "word" else t[1] for t in tokens]
    if (not lower or lower[0] != "select" or lower.count("select") != 1
            or lower.count("from") != 1 or "join" in lower):
        return sql
    f = lower.index("from")
    if f + 1 >= len(tokens) or tokens[f + 1][0] != "word":
        return sql
    table = lower[f + 1]
    end = f + 2
    if end < len(tokens) and tokens[end][1] not in (";",) and lower[end] not in _CLAUSE_AFTER_FROM:
        return sql  # an alias, a comma list, a schema-qualified name: left alone
    if table not in schema.columns:
        return sql

    refs = _column_refs(tokens, lower, f)
    if refs is None:
        return sql
    bare = sorted({lower[i] for i in refs})
    if not bare or all(c in schema.columns[table] for c in bare):
        return sql
    # shortest foreign-key paths from the FROM table; its keys are in order of distance
    tree = _shortest_paths(_graph(schema), table)
    owner = {}
    for column in bare:
        if column in schema.columns[table]:
            owner[column] = table
            continue
        found = [t for t in tree if t != table and column in schema.columns[t]]
        if not found:
            return sql  # a name no table has: nothing to infer
        owner[column] = found[0]

    counts_rows = "*" in lower[:f] or any(
        lower[i] == "count" and lower[i + 2:i + 4] == ["*", ")"] for i in range(f))
    used = set(owner.values())
    if table not in used and not counts_rows:
        whole = [t for t in schema.columns if all(c in schema.columns[t] for c in bare)]
        if len(whole) == 1:
            return _splice(sql, matches, {f + 1: whole[0]})

    joins = _join_steps(tree, table, used - {table})
    if joins is None:
        return sql
    replace = {i: f"{owner[lower[i]]}.{tokens[i][1]}" for i in refs}
    clause = table + "".join(f" JOIN {other} ON {on}" for other, on, _ in joins)
    replace[f + 1] = clause
    fans_out = any(expands for *_, expands in joins)
    has_aggregate = any(lower[i] in _AGGREGATES and i + 1 < f and lower[i + 1] == "("
                        for i in range(f))
    if fans_out and not has_aggregate and lower[1] != "distinct":
        replace[0] = tokens[0][1] + " DISTINCT"
    return _splice(sql, matches, replace)


def _column_refs(tokens, lower, f) -> list[int] | None:
    """Indexes of the bare column names (not keywords, functions, aliases, literals or
    qualified names), or None when the query has something this does not handle."""
    aliases = {lower[i + 1] for i in range(len(tokens) - 1) if lower[i] == "as"}
    refs = []
    for i, (kind, _text) in enumerate(tokens):
        if kind == "quoted":
            return None
        if kind != "word" or i == f + 1:
            continue
        word = lower[i]
        before = lower[i - 1] if i else ""
        after = lower[i + 1] if i + 1 < len(tokens) else ""
        if after == "." or before == ".":
            return None  # qualified names: the model chose its tables
        if after == "(" or word in _KEYWORDS or word in aliases or before == "as":
            continue
        refs.append(i)
    return refs


def _graph(schema: Schema) -> dict[str, list[tuple[str, str, bool]]]:
    """table -> (neighbour, ON condition, whether the join repeats this table's rows)."""
    graph: dict[str, list] = collections.defaultdict(list)
    for child, col, parent, parent_col in schema.foreign_keys:
        on = f"{child}.{col} = {parent}.{parent_col}"
        graph[child].append((parent, on, False))   # many-to-one: rows kept
        graph[parent].append((child, on, True))    # one-to-many: parent rows repeat
    return graph


def _shortest_paths(graph, start) -> dict[str, tuple[str, str, bool] | None]:
    """Breadth-first from start: each table reached -> (the table before it, ON, whether the
    join fans out); start -> None. Insertion order is distance order."""
    parent: dict[str, tuple[str, str, bool] | None] = {start: None}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for nxt, on, expands in graph.get(node, ()):
            if nxt not in parent:
                parent[nxt] = (node, on, expands)
                queue.append(nxt)
    return parent


def _join_steps(parent, start, targets) -> list[tuple[str, str, bool]] | None:
    """JOIN steps (table, ON, fans out) reaching every target from start along the shortest
    paths, each table joined once; None when one is unreachable."""
    steps, joined = [], {start}
    for target in sorted(targets):
        if target not in parent:
            return None
        path = []
        node = target
        while node not in joined:
            prev, on, expands = parent[node]
            path.append((node, on, expands))
            node = prev
        for step in reversed(path):
            steps.append(step)
            joined.add(step[0])
    return steps


def _splice(sql: str, matches, replace: dict[int, str]) -> str:
    """`sql` with the tokens at the given indexes replaced; all other text as it was."""
    out, last = [], 0
    for i in sorted(replace):
        out += [sql[last:matches[i].start()], replace[i]]
        last = matches[i].end()
    return "".join(out) + sql[last:]

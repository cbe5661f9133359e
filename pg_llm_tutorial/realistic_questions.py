"""Questions over real-style schemas (realistic_schemas): joins over two and three tables,
GROUP BY with HAVING, ORDER BY with LIMIT, subqueries, DISTINCT, dates and NULL checks.

The SQL keeps the tutorial's one style (questions.py): upper-case keywords, no aliases,
columns qualified by their table whenever a query reads two tables, `JOIN parent ON
child.<fk> = parent.<key>` with the key names the schema really has, explicit ASC/DESC.
Questions use the domain's nouns ("patients"), not the table names (`person`), and value
words a reader of the schema can map: a code's meaning when the DDL comments it, else the
code itself. Values come from the rows, so every gold query returns rows (tested).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from .realistic_schemas import RCol, RDatabase, RTable, Domain, Style, column_name, _literal

KINDS = ("filter", "aggregate", "group", "order", "join", "join3", "subquery", "distinct",
         "date", "null")
# The wording of each question, apart from its logic (as phrasings.json for questions.py).
PHRASINGS = json.loads((Path(__file__).parent / "realistic_phrasings.json").read_text())
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


@dataclass
class RContext:
    domain: Domain
    style: Style
    db: RDatabase
    rng: random.Random

    def pick(self, seq):
        seq = list(seq)
        return self.rng.choice(seq) if seq else None

    def say(self, question: str, **fields) -> str:
        """One of a question's phrasings (realistic_phrasings.json), filled in with `fields`."""
        return self.pick(PHRASINGS[question]).format(**fields)

    def col(self, table: RTable, col: RCol | None) -> str:
        """Physical column name; None is the table's primary key."""
        if col is None:
            return self.style.key_name(table)
        return column_name(self.style, self.domain, table, col)

    def q(self, table: RTable, col: RCol | None) -> str:
        return f"{table.name}.{self.col(table, col)}"

    def rows(self, table: RTable) -> list[dict]:
        return self.db[table.name]

    def join_on(self, child: RTable, parent: RTable) -> str:
        """`parent ON child.fk = parent.key`"""
        return f"{parent.name} ON {self.q(child, child.fk_to(parent.name))} = {self.q(parent, None)}"


def _a(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def _key(col: RCol) -> str:
    return col.name or f"fk:{col.references}"


def show(value) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value.isoformat() if isinstance(value, date) else str(value)


def _plural(words: str) -> str:
    return words[:-1] + "ies" if words.endswith("y") and words[-2] not in "aeiou" else \
        (words + "es" if words.endswith(("s", "x", "ch", "sh")) else words + "s")


def category_text(ctx: RContext, col: RCol, value) -> str:
    if col.coded:
        if ctx.style.comments != "none":
            return ctx.pick((f"whose {col.phrase} is {col.meaning(value)}",
                             f"with {col.phrase} {col.meaning(value)}"))
        return f"with {col.phrase} code {value}"
    return ctx.pick((f"whose {col.phrase} is {value}", f"with {col.phrase} {value}"))


def condition(ctx: RContext, table: RTable, rows=None, kinds=("category", "number", "date", "timestamp"),
              qualify=False):
    """(sql, phrase, matching rows) for a condition some of `rows` satisfy."""
    rows = rows if rows is not None else ctx.rows(table)
    col = ctx.pick(table.of_kind(*kinds))
    if col is None:
        return None
    name = ctx.q(table, col) if qualify else ctx.col(table, col)
    present = [r for r in rows if r[_key(col)] is not None]
    if not present:
        return None
    if col.kind == "category":
        value = ctx.pick(r[_key(col)] for r in present)
        return (f"{name} = {_literal(value)}", category_text(ctx, col, value),
                [r for r in rows if r[_key(col)] == value])
    ordered = sorted(r[_key(col)] for r in present)
    pivot = ordered[ctx.rng.randint(len(ordered) // 4, (3 * len(ordered)) // 4)]
    if isinstance(pivot, datetime):
        pivot = pivot.date()
    elif isinstance(pivot, float):
        pivot = int(pivot)
    above = ctx.rng.random() < 0.5

    def holds(v):
        if v is None:
            return False
        v = v.date() if isinstance(v, datetime) else v
        return v > pivot if above else v < pivot
    if not any(holds(r[_key(col)]) for r in rows):
        above = not above
    matching = [r for r in rows if holds(r[_key(col)])]
    if not matching:
        return None
    if col.kind in ("date", "timestamp"):
        word = "after" if above else "before"
        phrase = ctx.pick((f"with {col.phrase} {word} {show(pivot)}", f"whose {col.phrase} is {word} {show(pivot)}"))
        literal = _literal(pivot)
    else:
        word = ctx.pick(("above", "over", "greater than")) if above else ctx.pick(("below", "under", "less than"))
        phrase = ctx.pick((f"with {col.phrase} {word} {pivot}", f"whose {col.phrase} is {word} {pivot}"))
        literal = str(pivot)
    return f"{name} {'>' if above else '<'} {literal}", phrase, matching


def display(ctx: RContext, table: RTable, exclude=()) -> RCol | None:
    """What a question lists: the label, else a column without NULLs."""
    if table.of_kind("label"):
        return table.label
    cols = [c for c in table.of_kind("number", "date", "timestamp", "category")
            if not c.nullable and c.name not in exclude]
    return cols[0] if cols else None


def sortable(ctx: RContext, table: RTable) -> list[RCol]:
    out = []
    for c in table.of_kind("number", "date", "timestamp"):
        vals = [r[_key(c)] for r in ctx.rows(table)]
        if not c.nullable and len(set(vals)) == len(vals):
            out.append(c)
    return out


AGG = {"AVG": ("average", "mean"), "SUM": ("total",), "MIN": ("lowest", "smallest"),
       "MAX": ("highest", "largest")}


def agg(ctx: RContext, col: RCol) -> tuple[str, str]:
    funcs = ("MIN", "MAX") if "year" in col.name or col.kind != "number" else tuple(AGG)
    f = ctx.pick(funcs)
    return f, ctx.pick(AGG[f])


# --- single table -------------------------------------------------------------------------

def filter_rows(ctx: RContext):
    table = ctx.pick(t for t in ctx.domain.tables if display(ctx, t))
    cond = condition(ctx, table)
    if not cond:
        return None
    cond_col = cond[0].split()[0]
    shown = display(ctx, table, exclude=(cond_col,)) or display(ctx, table)
    if ctx.rng.random() < 0.35:
        second = condition(ctx, table, rows=cond[2], kinds=("number", "date", "timestamp"))
        if second and second[0].split()[0] != cond[0].split()[0]:
            q = ctx.say("filter_two_conditions", shown_plural=_plural(shown.phrase),
                        tables=table.noun, cond=cond[1], second=second[1])
            return q, f"SELECT {ctx.col(table, shown)} FROM {table.name} WHERE {cond[0]} AND {second[0]}"
    q = ctx.say("filter_one_condition", shown_plural=_plural(shown.phrase), tables=table.noun,
                cond=cond[1], shown=shown.phrase, table=table.singular)
    return q, f"SELECT {ctx.col(table, shown)} FROM {table.name} WHERE {cond[0]}"


def aggregate_rows(ctx: RContext):
    table = ctx.pick(ctx.domain.tables)
    nums = table.of_kind("number")
    if not nums or ctx.rng.random() < 0.35:
        cond = condition(ctx, table)
        if not cond:
            return None
        q = ctx.say("count_where", tables=table.noun, cond=cond[1])
        return q, f"SELECT COUNT(*) FROM {table.name} WHERE {cond[0]}"
    col = ctx.pick(nums)
    func, word = agg(ctx, col)
    q = ctx.say("aggregate_all", word=word, col=col.phrase, tables=table.noun)
    return q, f"SELECT {func}({ctx.col(table, col)}) FROM {table.name}"


def group_having(ctx: RContext):
    table = ctx.pick(t for t in ctx.domain.tables if t.of_kind("category"))
    if table is None:
        return None
    cat = ctx.pick(c for c in table.of_kind("category") if not c.nullable)
    if cat is None:
        return None
    counts: dict = {}
    for r in ctx.rows(table):
        counts[r[_key(cat)]] = counts.get(r[_key(cat)], 0) + 1
    nums = [c for c in table.of_kind("number")]
    if nums and ctx.rng.random() < 0.4:
        num = ctx.pick(nums)
        groups: dict = {}
        for r in ctx.rows(table):
            if r[_key(num)] is not None:
                groups.setdefault(r[_key(cat)], []).append(r[_key(num)])
        avgs = sorted(sum(v) / len(v) for v in groups.values())
        if len(avgs) < 2:
            return None
        cut = int((avgs[0] + avgs[-1]) / 2)
        if not any(a > cut for a in avgs):
            return None
        q = ctx.say("groups_above_average", cats=_plural(cat.phrase), tables=table.noun,
                    num=num.phrase, cut=cut, cat=cat.phrase)
        n = ctx.col(table, num)
        return q, (f"SELECT {ctx.col(table, cat)}, AVG({n}) FROM {table.name} "
                   f"GROUP BY {ctx.col(table, cat)} HAVING AVG({n}) > {cut}")
    top = max(counts.values())
    if top < 2:
        return None
    k = ctx.rng.randint(1, top - 1)
    q = ctx.say("groups_above_count", cats=_plural(cat.phrase), k=k, tables=table.noun,
                cat=cat.phrase)
    c = ctx.col(table, cat)
    return q, f"SELECT {c}, COUNT(*) FROM {table.name} GROUP BY {c} HAVING COUNT(*) > {k}"


def order_limit(ctx: RContext):
    table = ctx.pick(t for t in ctx.domain.tables if sortable(ctx, t) and display(ctx, t))
    if table is None:
        return None
    col = ctx.pick(sortable(ctx, table))
    shown = display(ctx, table, exclude=(col.name,))
    if shown is None or shown.name == col.name:
        return None
    desc = ctx.rng.random() < 0.6
    most = ("most recent" if desc else "earliest") if col.kind in ("date", "timestamp") else \
        (ctx.pick(("highest", "largest")) if desc else ctx.pick(("lowest", "smallest")))
    k = ctx.rng.randint(1, 5)
    sql = (f"SELECT {ctx.col(table, shown)} FROM {table.name} "
           f"ORDER BY {ctx.col(table, col)} {'DESC' if desc else 'ASC'} LIMIT {k}")
    if k == 1:
        return f"Which {table.singular} has the {most} {col.phrase}? Give its {shown.phrase}.", sql
    return ctx.say("top_k", shown_plural=_plural(shown.phrase), k=k, tables=table.noun, most=most,
                   col=col.phrase), sql


# --- joins ----------------------------------------------------------------------------------

def join_two(ctx: RContext):
    edge = ctx.pick(ctx.domain.foreign_keys())
    child, fkcol, parent = edge
    variant = ctx.rng.randrange(3)
    if variant == 0 and parent.of_kind("label"):
        # parents having a child that matches: DISTINCT parent labels
        cond = condition(ctx, child, qualify=True, kinds=("category", "number", "date", "timestamp"))
        if not cond:
            return None
        pl = parent.label
        q = ctx.say("parents_having_children", labels=_plural(pl.phrase), parents=parent.noun,
                    children=child.noun, cond=cond[1], child=child.singular)
        return q, (f"SELECT DISTINCT {ctx.q(parent, pl)} FROM {parent.name} JOIN {child.name} "
                   f"ON {ctx.q(child, fkcol)} = {ctx.q(parent, None)} WHERE {cond[0]}")
    if variant == 1:
        # children filtered on a parent attribute
        shown = display(ctx, child)
        cond = condition(ctx, parent, qualify=True, kinds=("category", "number", "date"))
        if not cond or not shown:
            return None
        keys = {r["key"] for r in cond[2]}
        if not any(r[_key(fkcol)] in keys for r in ctx.rows(child)):
            return None
        q = ctx.say("children_of_parents", shown_plural=_plural(shown.phrase), children=child.noun,
                    parents=parent.noun, cond=cond[1], shown=shown.phrase, child=child.singular,
                    parent=parent.singular)
        return q, (f"SELECT {ctx.q(child, shown)} FROM {child.name} JOIN {ctx.join_on(child, parent)} "
                   f"WHERE {cond[0]}")
    if not parent.of_kind("label"):
        return None
    pl = parent.label
    nums = child.of_kind("number")
    if nums and ctx.rng.random() < 0.5:
        num = ctx.pick(nums)
        func, word = agg(ctx, num)
        q = ctx.say("aggregate_per_parent", parent=parent.singular, label=pl.phrase, word=word,
                    num=num.phrase, children=child.noun)
        return q, (f"SELECT {ctx.q(parent, pl)}, {func}({ctx.q(child, num)}) FROM {child.name} "
                   f"JOIN {ctx.join_on(child, parent)} GROUP BY {ctx.q(parent, pl)}")
    q = ctx.say("count_per_parent", children=child.noun, parent=parent.singular, label=pl.phrase)
    return q, (f"SELECT {ctx.q(parent, pl)}, COUNT(*) FROM {child.name} JOIN {ctx.join_on(child, parent)} "
               f"GROUP BY {ctx.q(parent, pl)}")


def _paths(domain: Domain) -> list[tuple[RTable, RTable, RTable, str]]:
    """(a, middle, c, shape): link tables a <- middle -> c, and chains middle -> a, c -> middle."""
    out = []
    for t in domain.tables:
        fks = t.of_kind("fk")
        for x in fks:
            for y in fks:
                if x is not y:
                    out.append((domain.table(x.references), t, domain.table(y.references), "link"))
    for c, _, b in domain.foreign_keys():
        for _, _, a in [e for e in domain.foreign_keys() if e[0] is b]:
            out.append((a, b, c, "chain"))
    return out


def join_three(ctx: RContext):
    a, mid, c, shape = ctx.pick(_paths(ctx.domain))
    if shape == "link":
        # a's labels linked through mid to c rows matching a condition
        if not a.of_kind("label"):
            return None
        cond = condition(ctx, c, qualify=True)
        if c.of_kind("label") and ctx.rng.random() < 0.5:
            row = ctx.pick(ctx.rows(c))
            value = row[_key(c.label)]
            cond = (f"{ctx.q(c, c.label)} = {_literal(value)}", f"for the {c.singular} {value}",
                    [row])
        if not cond:
            return None
        keys = {r["key"] for r in cond[2]}
        fk_a, fk_c = _key(mid.fk_to(a.name)), _key(mid.fk_to(c.name))
        if not any(r[fk_c] in keys for r in ctx.rows(mid)):
            return None
        q = ctx.pick((f"List the {_plural(a.label.phrase)} of {a.noun} with {mid.noun} linked to {c.noun} {cond[1]}."
                      if not cond[1].startswith("for the") else
                      f"List the {_plural(a.label.phrase)} of {a.noun} with {mid.noun} {cond[1]}.",
                      f"Which {a.noun} have {mid.noun} involving {c.noun} {cond[1]}? Give their {_plural(a.label.phrase)}."
                      if not cond[1].startswith("for the") else
                      f"Which {a.noun} have {mid.noun} {cond[1]}? Give their {_plural(a.label.phrase)}."))
        return q, (f"SELECT DISTINCT {ctx.q(a, a.label)} FROM {a.name} "
                   f"JOIN {mid.name} ON {ctx.q(mid, mid.fk_to(a.name))} = {ctx.q(a, None)} "
                   f"JOIN {ctx.join_on(mid, c)} WHERE {cond[0]}")
    # chain c -> mid -> a: an aggregate of c over a's condition, or a's labels for c's condition
    cond = condition(ctx, a, qualify=True, kinds=("category",)) or condition(ctx, a, qualify=True)
    if not cond:
        return None
    a_keys = {r["key"] for r in cond[2]}
    mid_keys = {r["key"] for r in ctx.rows(mid) if r[f"fk:{a.name}"] in a_keys}
    c_rows = [r for r in ctx.rows(c) if r[f"fk:{mid.name}"] in mid_keys]
    if not c_rows:
        return None
    joins = (f"FROM {c.name} JOIN {ctx.join_on(c, mid)} JOIN {ctx.join_on(mid, a)} WHERE {cond[0]}")
    nums = [n for n in c.of_kind("number") if any(r[_key(n)] is not None for r in c_rows)]
    if nums and ctx.rng.random() < 0.6:
        num = ctx.pick(nums)
        func, word = agg(ctx, num)
        q = ctx.say("chain_aggregate", word=word, num=num.phrase, c=c.noun, mids=mid.noun,
                    a=a.noun, cond=cond[1], mid=mid.singular)
        return q, f"SELECT {func}({ctx.q(c, num)}) {joins}"
    q = ctx.say("chain_count", c=c.noun, mids=mid.noun, a=a.noun, cond=cond[1], mid=mid.singular)
    return q, f"SELECT COUNT(*) {joins}"


# --- subqueries, DISTINCT, dates, NULLs -------------------------------------------------------

def subquery(ctx: RContext):
    if ctx.rng.random() < 0.45:
        table = ctx.pick(t for t in ctx.domain.tables if t.of_kind("number") and display(ctx, t))
        if table is None:
            return None
        num = ctx.pick(table.of_kind("number"))
        shown = display(ctx, table, exclude=(num.name,))
        if shown is None or shown.name == num.name:
            return None
        above = ctx.rng.random() < 0.6
        n = ctx.col(table, num)
        q = ctx.say("above_average", tables=table.noun, a_num=_a(num.phrase),
                    above_below='above' if above else 'below', shown_plural=_plural(shown.phrase),
                    num=num.phrase, higher_lower='higher' if above else 'lower')
        return q, (f"SELECT {ctx.col(table, shown)} FROM {table.name} WHERE {n} {'>' if above else '<'} "
                   f"(SELECT AVG({n}) FROM {table.name})")
    edge = ctx.pick(e for e in ctx.domain.foreign_keys() if e[2].of_kind("label"))
    if edge is None:
        return None
    child, fkcol, parent = edge
    cond = condition(ctx, child)
    if not cond:
        return None
    negate = ctx.rng.random() < 0.3
    keys = {r[_key(fkcol)] for r in cond[2]}
    if negate and all(r["key"] in keys for r in ctx.rows(parent)):
        negate = False
    pl = parent.label
    if negate:
        q = ctx.say("parents_without_children", parents=parent.noun, children=child.noun,
                    cond=cond[1], labels=_plural(pl.phrase), child=child.singular)
    else:
        q = ctx.say("parents_with_children", parents=parent.noun, children=child.noun,
                    cond=cond[1], labels=_plural(pl.phrase), a_child=_a(child.singular))
    return q, (f"SELECT {ctx.col(parent, pl)} FROM {parent.name} WHERE {ctx.col(parent, None)} "
               f"{'NOT IN' if negate else 'IN'} (SELECT {ctx.col(child, fkcol)} FROM {child.name} WHERE {cond[0]})")


def distinct(ctx: RContext):
    if ctx.rng.random() < 0.5:
        child, fkcol, parent = ctx.pick(ctx.domain.foreign_keys())
        cond = condition(ctx, child)
        if not cond:
            return None
        q = ctx.say("count_distinct_parents", parents=parent.noun, children=child.noun,
                    cond=cond[1])
        return q, f"SELECT COUNT(DISTINCT {ctx.col(child, fkcol)}) FROM {child.name} WHERE {cond[0]}"
    table = ctx.pick(t for t in ctx.domain.tables if [c for c in t.of_kind("category") if not c.nullable])
    if table is None:
        return None
    cat = ctx.pick(c for c in table.of_kind("category") if not c.nullable)
    cond = condition(ctx, table, kinds=("number", "date", "timestamp"))
    if cond and ctx.rng.random() < 0.6:
        q = ctx.say("distinct_where", cats=_plural(cat.phrase), tables=table.noun, cond=cond[1],
                    cat=cat.phrase)
        return q, f"SELECT DISTINCT {ctx.col(table, cat)} FROM {table.name} WHERE {cond[0]}"
    q = ctx.say("distinct_all", cats=_plural(cat.phrase), tables=table.noun)
    return q, f"SELECT DISTINCT {ctx.col(table, cat)} FROM {table.name}"


def dates(ctx: RContext):
    table = ctx.pick(t for t in ctx.domain.tables if t.of_kind("date", "timestamp"))
    if table is None:
        return None
    col = ctx.pick(table.of_kind("date", "timestamp"))
    vals = [r[_key(col)] for r in ctx.rows(table) if r[_key(col)] is not None]
    some = ctx.pick(vals)
    c = ctx.col(table, col)
    shown = display(ctx, table, exclude=(col.name,))
    years = {v.year for v in vals}
    if len(years) > 1 and ctx.rng.random() < 0.5:
        where = f"EXTRACT(YEAR FROM {c}) = {some.year}"
        when = f"in {some.year}"
    else:
        first = date(some.year, some.month, 1)
        nxt = date(some.year + (some.month == 12), some.month % 12 + 1, 1)
        where = f"{c} >= {_literal(first)} AND {c} < {_literal(nxt)}"
        when = f"in {MONTHS[some.month - 1]} {some.year}"
    if ctx.rng.random() < 0.4 or shown is None or shown.name == col.name:
        q = ctx.say("count_in_period", tables=table.noun, a_col=_a(col.phrase), when=when,
                    col=col.phrase)
        return q, f"SELECT COUNT(*) FROM {table.name} WHERE {where}"
    q = ctx.say("list_in_period", shown_plural=_plural(shown.phrase), tables=table.noun,
                a_col=_a(col.phrase), when=when, col=col.phrase)
    return q, f"SELECT {ctx.col(table, shown)} FROM {table.name} WHERE {where}"


def nulls(ctx: RContext):
    table = ctx.pick(t for t in ctx.domain.tables if [c for c in t.columns if c.nullable])
    if table is None:
        return None
    col = ctx.pick(c for c in table.columns if c.nullable)
    c = ctx.col(table, col)
    missing = ctx.rng.random() < 0.6
    if ctx.rng.random() < 0.4:
        q = (ctx.say("count_missing", tables=table.noun, col=col.phrase, a_col=_a(col.phrase))
             if missing else
             ctx.say("count_present", tables=table.noun, a_col=_a(col.phrase)))
        return q, f"SELECT COUNT(*) FROM {table.name} WHERE {c} IS {'NULL' if missing else 'NOT NULL'}"
    shown = display(ctx, table, exclude=(col.name,))
    if shown is None:
        return None
    q = (ctx.say("list_missing", shown_plural=_plural(shown.phrase), tables=table.noun,
                 col=col.phrase)
         if missing else
         ctx.say("list_present", shown_plural=_plural(shown.phrase), tables=table.noun,
                 a_col=_a(col.phrase)))
    return q, f"SELECT {ctx.col(table, shown)} FROM {table.name} WHERE {c} IS {'NULL' if missing else 'NOT NULL'}"


TEMPLATES = {"filter": filter_rows, "aggregate": aggregate_rows, "group": group_having,
             "order": order_limit, "join": join_two, "join3": join_three, "subquery": subquery,
             "distinct": distinct, "date": dates, "null": nulls}
# Kinds whose gold query reads more than one table (the "questions that need a join").
MULTI_TABLE_KINDS = ("join", "join3")

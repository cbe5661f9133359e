"""Question templates: (natural-language question, gold PostgreSQL) pairs over a Schema.

One SQL style throughout, so a small model can learn it and apply it to unseen schemas:
upper-case keywords, single-quoted strings, no aliases (joins qualify every column with its
table name), `JOIN parent ON child.parent_id = parent.id`, explicit ASC/DESC, no semicolon.
The wording varies (several phrasings per template); the SQL for a meaning never does.

Each template takes a Context and returns (question, sql) or None when the schema has
nothing it can ask about. Values are picked from the synthetic rows so every gold query
returns rows on the schema's database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from .schemas import Column, Database, Schema, Table, sql_literal

KINDS = ("filter", "aggregate", "group", "order", "join")


@dataclass
class Context:
    schema: Schema
    db: Database
    rng: random.Random

    def pick(self, seq):
        return self.rng.choice(list(seq))

    def tables_with(self, *kinds: str) -> list[Table]:
        """Tables having at least one column of each kind."""
        return [t for t in self.schema.tables if all(t.of_kind(k) for k in kinds)]

    def values(self, table: Table, col: Column) -> list:
        return [row[col.name] for row in self.db[table.name]]


# --- words ------------------------------------------------------------------------------

def plural(words: str) -> str:
    if words.endswith("y") and words[-2:-1] not in "aeiou":
        return words[:-1] + "ies"
    if words.endswith(("s", "x", "ch", "sh")):
        return words + "es"
    return words + "s"


def article(words: str) -> str:
    return "an" if words[:1] in "aeiou" else "a"


def show(value) -> str:
    """How a value appears in a question: exactly as stored, so the model can copy it."""
    return value.isoformat() if isinstance(value, date) else str(value)


def nice_threshold(values: list, rng: random.Random):
    """A threshold inside the value range (so both sides of it have rows), rounded to look
    like something a person would type."""
    ordered = sorted(values)
    v = ordered[rng.randint(len(ordered) // 4, (3 * len(ordered)) // 4)]
    if isinstance(v, date):
        return v
    if isinstance(v, float):
        return int(v)
    if v >= 1000:
        return int(round(v, -(len(str(v)) - 2)))  # 123456 -> 120000
    return v


def condition_text(ctx: Context, table: Table, col: Column, op: str, value) -> str:
    """Phrase for `<col> <op> <value>` attached to a plural noun: "from Canada"."""
    v = show(value)
    if col.kind == "category":
        phrases = col.phrases or ("whose {w} is {v}", "with {w} {v}")
        return ctx.pick(phrases).format(v=v, w=col.words)
    if col.kind == "date":
        after, before = col.phrases or (f"with {col.words} after {{v}}", f"with {col.words} before {{v}}")
        return (after if op == ">" else before).format(v=v)
    if op == ">":
        options = [f"with {article(col.words)} {{w}} greater than {{v}}", "with {w} above {v}",
                   "whose {w} is more than {v}"]
        if col.phrases:
            options.append(col.phrases[0])
    else:
        options = [f"with {article(col.words)} {{w}} less than {{v}}", "with {w} below {v}",
                   "whose {w} is under {v}"]
        if col.phrases:
            options.append(col.phrases[1])
    return ctx.pick(options).format(w=col.words, v=v)


def random_condition(ctx: Context, table: Table, *, kinds=("category", "number", "date"),
                     rows=None):
    """(column, op, value, sql) for a condition that at least one of `rows` satisfies."""
    rows = rows if rows is not None else ctx.db[table.name]
    cols = [c for c in table.of_kind(*kinds)]
    if not cols:
        return None
    col = ctx.pick(cols)
    if col.kind == "category":
        value, op = ctx.pick(row[col.name] for row in rows), "="
    else:
        op = ctx.pick((">", "<"))
        value = nice_threshold([r[col.name] for r in rows], ctx.rng)
        if not any((r[col.name] > value) if op == ">" else (r[col.name] < value) for r in rows):
            op = "<" if op == ">" else ">"
        if not any((r[col.name] > value) if op == ">" else (r[col.name] < value) for r in rows):
            return None
    sql_value = sql_literal(show(value) if isinstance(value, date) else value)
    return col, op, value, f"{col.name} {op} {sql_value}"


def matches(row: dict, col: Column, op: str, value) -> bool:
    v = row[col.name]
    return v == value if op == "=" else (v > value if op == ">" else v < value)


def display_column(ctx: Context, table: Table, exclude=()) -> Column:
    """The column a question asks to list: the label mostly, sometimes another column."""
    labels = table.of_kind("label")
    others = [c for c in table.of_kind("category", "number", "date") if c.name not in exclude]
    if labels and (not others or ctx.rng.random() < 0.7):
        return labels[0]
    return ctx.pick(others) if others else table.of_kind("key")[0]


def has_unique(ctx: Context, table: Table, col: Column) -> bool:
    values = ctx.values(table, col)
    return len(set(values)) == len(values)


# --- filter -----------------------------------------------------------------------------

def filter_one_condition(ctx: Context):
    table = ctx.pick(ctx.schema.tables)
    cond = random_condition(ctx, table)
    if not cond:
        return None
    col, op, value, where = cond
    shown = display_column(ctx, table, exclude=(col.name,))
    what = plural(shown.words)
    phrase = condition_text(ctx, table, col, op, value)
    q = ctx.pick((
        f"List the {what} of {table.name} {phrase}.",
        f"What are the {what} of {table.name} {phrase}?",
        f"Show the {shown.words} of every {table.singular} {phrase}.",
        f"Find the {what} of all {table.name} {phrase}.",
        f"Which {table.name} are {phrase}? Give their {what}.",
    ))
    return q, f"SELECT {shown.name} FROM {table.name} WHERE {where}"


def filter_two_conditions(ctx: Context):
    tables = ctx.tables_with("category", "number")
    if not tables:
        return None
    table = ctx.pick(tables)
    first = random_condition(ctx, table, kinds=("category",))
    rows = [r for r in ctx.db[table.name] if matches(r, first[0], first[1], first[2])]
    second = random_condition(ctx, table, kinds=("number", "date"), rows=rows)
    if not second:
        return None
    shown = display_column(ctx, table, exclude=(first[0].name, second[0].name))
    p1 = condition_text(ctx, table, *first[:3])
    p2 = condition_text(ctx, table, *second[:3])
    q = ctx.pick((
        f"List the {plural(shown.words)} of {table.name} {p1} and {p2}.",
        f"Which {table.name} are {p1} and {p2}? Give their {plural(shown.words)}.",
        f"Show the {shown.words} of each {table.singular} {p1} and {p2}.",
    ))
    return q, f"SELECT {shown.name} FROM {table.name} WHERE {first[3]} AND {second[3]}"


def filter_all_columns(ctx: Context):
    table = ctx.pick(ctx.schema.tables)
    cond = random_condition(ctx, table)
    if not cond:
        return None
    phrase = condition_text(ctx, table, *cond[:3])
    q = ctx.pick((
        f"Show all information about {table.name} {phrase}.",
        f"Show every column of the {table.name} {phrase}.",
        f"Give me all details of {table.name} {phrase}.",
    ))
    return q, f"SELECT * FROM {table.name} WHERE {cond[3]}"


def filter_two_columns(ctx: Context):
    table = ctx.pick(ctx.schema.tables)
    cond = random_condition(ctx, table)
    if not cond:
        return None
    cols = [c for c in table.of_kind("label", "category", "number", "date") if c.name != cond[0].name]
    if len(cols) < 2:
        return None
    a, b = ctx.rng.sample(cols, 2)
    phrase = condition_text(ctx, table, *cond[:3])
    q = ctx.pick((
        f"List the {a.words} and {b.words} of {table.name} {phrase}.",
        f"Show the {a.words} and the {b.words} of every {table.singular} {phrase}.",
    ))
    return q, f"SELECT {a.name}, {b.name} FROM {table.name} WHERE {cond[3]}"


# --- aggregate --------------------------------------------------------------------------

AGGREGATES = {
    "AVG": ("average", "mean"),
    "SUM": ("total", "sum of the"),
    "MIN": ("lowest", "minimum", "smallest"),
    "MAX": ("highest", "maximum", "largest"),
}


def aggregate_for(ctx: Context, col: Column) -> tuple[str, str]:
    """(SQL function, wording); years are only ever compared, never summed or averaged."""
    funcs = ("MIN", "MAX") if col.name.endswith("year") else tuple(AGGREGATES)
    func = ctx.pick(funcs)
    return func, ctx.pick(AGGREGATES[func])


def aggregate_count(ctx: Context):
    table = ctx.pick(ctx.schema.tables)
    if ctx.rng.random() < 0.3:
        q = ctx.pick((f"How many {table.name} are there?", f"Count the {table.name}.",
                      f"What is the total number of {table.name}?"))
        return q, f"SELECT COUNT(*) FROM {table.name}"
    cond = random_condition(ctx, table)
    if not cond:
        return None
    phrase = condition_text(ctx, table, *cond[:3])
    q = ctx.pick((f"How many {table.name} are {phrase}?", f"Count the {table.name} {phrase}.",
                  f"What is the number of {table.name} {phrase}?"))
    return q, f"SELECT COUNT(*) FROM {table.name} WHERE {cond[3]}"


def aggregate_number(ctx: Context):
    tables = ctx.tables_with("number")
    if not tables:
        return None
    table = ctx.pick(tables)
    col = ctx.pick(table.of_kind("number"))
    func, word = aggregate_for(ctx, col)
    where, phrase = "", ""
    if ctx.rng.random() < 0.5:
        cond = random_condition(ctx, table, kinds=("category", "date"))
        if cond:
            where = f" WHERE {cond[3]}"
            phrase = " " + condition_text(ctx, table, *cond[:3])
    q = ctx.pick((
        f"What is the {word} {col.words} of {table.name}{phrase}?",
        f"Find the {word} {col.words} among {table.name}{phrase}.",
        f"Give the {word} {col.words} of all {table.name}{phrase}.",
    ))
    return q, f"SELECT {func}({col.name}) FROM {table.name}{where}"


# --- group ------------------------------------------------------------------------------

def group_count(ctx: Context):
    tables = ctx.tables_with("category")
    if not tables:
        return None
    table = ctx.pick(tables)
    col = ctx.pick(table.of_kind("category"))
    q = ctx.pick((
        f"How many {table.name} are there for each {col.words}?",
        f"Count the {table.name} in each {col.words}.",
        f"For each {col.words}, show the number of {table.name}.",
        f"Show each {col.words} and how many {table.name} have it.",
    ))
    return q, f"SELECT {col.name}, COUNT(*) FROM {table.name} GROUP BY {col.name}"


def group_aggregate(ctx: Context):
    tables = ctx.tables_with("category", "number")
    if not tables:
        return None
    table = ctx.pick(tables)
    col = ctx.pick(table.of_kind("category"))
    num = ctx.pick(table.of_kind("number"))
    func, word = aggregate_for(ctx, num)
    q = ctx.pick((
        f"What is the {word} {num.words} of {table.name} for each {col.words}?",
        f"For each {col.words}, show the {word} {num.words} of {table.name}.",
        f"Show the {word} {num.words} of {table.name} per {col.words}.",
    ))
    return q, f"SELECT {col.name}, {func}({num.name}) FROM {table.name} GROUP BY {col.name}"


def group_having(ctx: Context):
    tables = ctx.tables_with("category")
    if not tables:
        return None
    table = ctx.pick(tables)
    col = ctx.pick(table.of_kind("category"))
    counts = {}
    for v in ctx.values(table, col):
        counts[v] = counts.get(v, 0) + 1
    top = max(counts.values())
    if top < 2:
        return None
    k = ctx.rng.randint(1, top - 1)
    if ctx.rng.random() < 0.5:
        q = ctx.pick((
            f"Which {plural(col.words)} have more than {k} {table.name}?",
            f"List the {plural(col.words)} with more than {k} {table.name}.",
        ))
        return q, f"SELECT {col.name} FROM {table.name} GROUP BY {col.name} HAVING COUNT(*) > {k}"
    k += 1
    q = ctx.pick((
        f"Which {plural(col.words)} have at least {k} {table.name}?",
        f"List the {plural(col.words)} that have {k} or more {table.name}.",
    ))
    return q, f"SELECT {col.name} FROM {table.name} GROUP BY {col.name} HAVING COUNT(*) >= {k}"


# --- order ------------------------------------------------------------------------------

def sortable(ctx: Context, table: Table) -> list[Column]:
    return [c for c in table.of_kind("number", "date") if has_unique(ctx, table, c)]


def order_top(ctx: Context):
    tables = [t for t in ctx.schema.tables if sortable(ctx, t)]
    if not tables:
        return None
    table = ctx.pick(tables)
    col = ctx.pick(sortable(ctx, table))
    shown = display_column(ctx, table, exclude=(col.name,))
    desc = ctx.rng.random() < 0.6
    if col.kind == "date":
        most = "most recent" if desc else "earliest"
    else:
        most = ctx.pick(("highest", "largest")) if desc else ctx.pick(("lowest", "smallest"))
    direction = "DESC" if desc else "ASC"
    if ctx.rng.random() < 0.35:
        q = ctx.pick((
            f"What is the {shown.words} of the {table.singular} with the {most} {col.words}?",
            f"Which {table.singular} has the {most} {col.words}? Give its {shown.words}.",
        ))
        return q, f"SELECT {shown.name} FROM {table.name} ORDER BY {col.name} {direction} LIMIT 1"
    k = ctx.rng.randint(2, 5)
    q = ctx.pick((
        f"List the {plural(shown.words)} of the {k} {table.name} with the {most} {col.words}.",
        f"Which {k} {table.name} have the {most} {col.words}? Give their {plural(shown.words)}.",
        f"Show the {plural(shown.words)} of the top {k} {table.name} by {most} {col.words}.",
    ))
    return q, f"SELECT {shown.name} FROM {table.name} ORDER BY {col.name} {direction} LIMIT {k}"


def order_sorted_list(ctx: Context):
    tables = [t for t in ctx.schema.tables if sortable(ctx, t)]
    if not tables:
        return None
    table = ctx.pick(tables)
    col = ctx.pick(sortable(ctx, table))
    shown = display_column(ctx, table, exclude=(col.name,))
    desc = ctx.rng.random() < 0.5
    how = ctx.pick(("from highest to lowest", "in descending order")) if desc else \
        ctx.pick(("from lowest to highest", "in ascending order"))
    direction = "DESC" if desc else "ASC"
    where, phrase = "", ""
    if ctx.rng.random() < 0.5:
        cond = random_condition(ctx, table, kinds=("category",))
        if cond:
            where, phrase = f" WHERE {cond[3]}", " " + condition_text(ctx, table, *cond[:3])
    q = ctx.pick((
        f"List the {plural(shown.words)} and {plural(col.words)} of {table.name}{phrase}, sorted by {col.words} {how}.",
        f"Show the {shown.words} and {col.words} of all {table.name}{phrase} ordered by {col.words} {how}.",
    ))
    return q, (f"SELECT {shown.name}, {col.name} FROM {table.name}{where} "
               f"ORDER BY {col.name} {direction}")


# --- join -------------------------------------------------------------------------------

def join_on(child: Table, fk: Column, parent: Table) -> str:
    return f"{parent.name} ON {child.name}.{fk.name} = {parent.name}.id"


def join_child_by_parent(ctx: Context):
    """Child rows filtered on a parent attribute: orders of customers from Canada."""
    fks = [(c, f, p) for c, f, p in ctx.schema.foreign_keys() if p.of_kind("category")]
    if not fks:
        return None
    child, fk, parent = ctx.pick(fks)
    some_child = ctx.pick(ctx.db[child.name])
    parent_row = next(r for r in ctx.db[parent.name] if r["id"] == some_child[fk.name])
    col = ctx.pick(parent.of_kind("category"))
    value = parent_row[col.name]
    shown = display_column(ctx, child)
    phrase = condition_text(ctx, parent, col, "=", value)
    q = ctx.pick((
        f"List the {plural(shown.words)} of {child.name} for {parent.name} {phrase}.",
        f"What are the {plural(shown.words)} of the {child.name} belonging to {parent.name} {phrase}?",
        f"Show the {shown.words} of every {child.singular} whose {parent.singular} is {phrase}."
        if not phrase.startswith("whose") else
        f"Show the {shown.words} of every {child.singular} of {parent.name} {phrase}.",
    ))
    return q, (f"SELECT {child.name}.{shown.name} FROM {child.name} JOIN {join_on(child, fk, parent)} "
               f"WHERE {parent.name}.{col.name} = {sql_literal(value)}")


def join_pair_labels(ctx: Context):
    """Each child with its parent's label: employees with their department name."""
    fks = [(c, f, p) for c, f, p in ctx.schema.foreign_keys() if p.of_kind("label")]
    if not fks:
        return None
    child, fk, parent = ctx.pick(fks)
    shown = display_column(ctx, child)
    plabel = parent.label
    q = ctx.pick((
        f"List the {shown.words} of each {child.singular} together with the {plabel.words} of its {parent.singular}.",
        f"Show the {plural(shown.words)} of all {child.name} and the {plural(plabel.words)} of their {parent.name}.",
        f"For every {child.singular}, show its {shown.words} and its {parent.singular} {plabel.words}.",
    ))
    return q, (f"SELECT {child.name}.{shown.name}, {parent.name}.{plabel.name} FROM {child.name} "
               f"JOIN {join_on(child, fk, parent)}")


def join_count_per_parent(ctx: Context):
    """How many children per parent label: orders per customer."""
    fks = [(c, f, p) for c, f, p in ctx.schema.foreign_keys() if p.of_kind("label")]
    if not fks:
        return None
    child, fk, parent = ctx.pick(fks)
    plabel = parent.label
    q = ctx.pick((
        f"How many {child.name} does each {parent.singular} have? Show the {parent.singular} {plabel.words} and the count.",
        f"For each {parent.singular} {plabel.words}, count the {child.name}.",
        f"Show the {plabel.words} of every {parent.singular} and its number of {child.name}.",
    ))
    return q, (f"SELECT {parent.name}.{plabel.name}, COUNT(*) FROM {child.name} "
               f"JOIN {join_on(child, fk, parent)} GROUP BY {parent.name}.{plabel.name}")


def join_aggregate_by_parent(ctx: Context):
    """An aggregate of child numbers over a parent filter: total amount for customers from Canada."""
    fks = [(c, f, p) for c, f, p in ctx.schema.foreign_keys()
           if p.of_kind("category") and c.of_kind("number")]
    if not fks:
        return None
    child, fk, parent = ctx.pick(fks)
    some_child = ctx.pick(ctx.db[child.name])
    parent_row = next(r for r in ctx.db[parent.name] if r["id"] == some_child[fk.name])
    col = ctx.pick(parent.of_kind("category"))
    value = parent_row[col.name]
    num = ctx.pick(child.of_kind("number"))
    func, word = aggregate_for(ctx, num)
    phrase = condition_text(ctx, parent, col, "=", value)
    q = ctx.pick((
        f"What is the {word} {num.words} of {child.name} for {parent.name} {phrase}?",
        f"Find the {word} {num.words} of the {child.name} belonging to {parent.name} {phrase}.",
    ))
    return q, (f"SELECT {func}({child.name}.{num.name}) FROM {child.name} JOIN {join_on(child, fk, parent)} "
               f"WHERE {parent.name}.{col.name} = {sql_literal(value)}")


def join_parent_by_child(ctx: Context):
    """Distinct parents having a child that matches: customers with a cancelled order."""
    fks = [(c, f, p) for c, f, p in ctx.schema.foreign_keys()
           if p.of_kind("label") and c.of_kind("category", "number", "date")]
    if not fks:
        return None
    child, fk, parent = ctx.pick(fks)
    cond = random_condition(ctx, child)
    if not cond:
        return None
    col, op, value, _ = cond
    plabel = parent.label
    phrase = condition_text(ctx, child, col, op, value)
    q = ctx.pick((
        f"List the {plural(plabel.words)} of {parent.name} that have {child.name} {phrase}.",
        f"Which {parent.name} have at least one {child.singular} {phrase}? Give their {plural(plabel.words)}.",
    ))
    return q, (f"SELECT DISTINCT {parent.name}.{plabel.name} FROM {parent.name} "
               f"JOIN {child.name} ON {child.name}.{fk.name} = {parent.name}.id "
               f"WHERE {child.name}.{cond[3]}")


def join_through_link(ctx: Context):
    """Three tables: students enrolled in the course Databases."""
    links = ctx.schema.link_tables()
    if not links:
        return None
    link = ctx.pick(links)
    fk_a, fk_b = ctx.rng.sample(link.of_kind("fk"), 2)
    a, b = ctx.schema.table(fk_a.references), ctx.schema.table(fk_b.references)
    row = ctx.pick(ctx.db[link.name])
    b_row = next(r for r in ctx.db[b.name] if r["id"] == row[fk_b.name])
    value = b_row[b.label.name]
    q = ctx.pick((
        f"List the {plural(a.label.words)} of {a.name} with a {link.singular} for the {b.singular} {value}.",
        f"Which {a.name} have a {link.singular} for the {b.singular} {value}? Give their {plural(a.label.words)}.",
        f"Show the {a.label.words} of every {a.singular} linked by a {link.singular} to the {b.singular} {value}.",
    ))
    return q, (f"SELECT {a.name}.{a.label.name} FROM {a.name} "
               f"JOIN {link.name} ON {link.name}.{fk_a.name} = {a.name}.id "
               f"JOIN {b.name} ON {link.name}.{fk_b.name} = {b.name}.id "
               f"WHERE {b.name}.{b.label.name} = {sql_literal(value)}")


TEMPLATES = {
    "filter": (filter_one_condition, filter_one_condition, filter_two_conditions,
               filter_all_columns, filter_two_columns),
    "aggregate": (aggregate_count, aggregate_number),
    "group": (group_count, group_aggregate, group_having),
    "order": (order_top, order_top, order_sorted_list),
    # join_through_link returns None on schemas without a link table; listed three times so
    # schemas that have one get enough 3-table joins.
    "join": (join_child_by_parent, join_pair_labels, join_count_per_parent,
             join_aggregate_by_parent, join_parent_by_child,
             join_through_link, join_through_link, join_through_link),
}

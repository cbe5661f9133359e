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

import json
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .schemas import Column, Database, Schema, Table, sql_literal

KINDS = ("filter", "aggregate", "group", "order", "join")
# The wording of each template, apart from its logic: several phrasings, one picked at random.
PHRASINGS = json.loads((Path(__file__).parent / "phrasings.json").read_text())


class NoQuestion(Exception):
    """The schema has nothing this template can ask about (the same as returning None)."""


def ask(template, ctx) -> tuple[str, str] | None:
    """(question, sql) from a template, or None when it has nothing to ask on this schema."""
    try:
        return template(ctx)
    except NoQuestion:
        return None


@dataclass
class Context:
    schema: Schema
    db: Database
    rng: random.Random

    def pick(self, seq):
        return self.rng.choice(list(seq))

    def say(self, template: str, **fields) -> str:
        """One of a template's phrasings (phrasings.json), filled in with `fields`."""
        return self.pick(PHRASINGS[template]).format(**fields)

    def tables_with(self, *kinds: str) -> list[Table]:
        """Tables having at least one column of each kind."""
        return [t for t in self.schema.tables if all(t.of_kind(k) for k in kinds)]

    def table_with(self, *kinds: str) -> Table:
        """One of tables_with(*kinds); NoQuestion when the schema has none."""
        tables = self.tables_with(*kinds)
        if not tables:
            raise NoQuestion
        return self.pick(tables)

    def link(self, parent_kinds=(), child_kinds=()) -> tuple[Table, Column, Table]:
        """One (child, foreign key, parent) whose parent has a column of one of parent_kinds
        and whose child has one of child_kinds; NoQuestion when the schema has none."""
        links = [(c, f, p) for c, f, p in self.schema.foreign_keys()
                 if p.of_kind(*parent_kinds) and (not child_kinds or c.of_kind(*child_kinds))]
        if not links:
            raise NoQuestion
        return self.pick(links)

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


def required_condition(ctx: Context, table: Table, **kw):
    """random_condition, or NoQuestion when the table has none."""
    cond = random_condition(ctx, table, **kw)
    if cond is None:
        raise NoQuestion
    return cond


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
    cond = required_condition(ctx, table)
    col, op, value, where = cond
    shown = display_column(ctx, table, exclude=(col.name,))
    what = plural(shown.words)
    phrase = condition_text(ctx, table, col, op, value)
    question = ctx.say("filter_one_condition", what=what, table_name=table.name, phrase=phrase,
                       shown_words=shown.words, table_singular=table.singular)
    return question, f"SELECT {shown.name} FROM {table.name} WHERE {where}"


def filter_two_conditions(ctx: Context):
    table = ctx.table_with("category", "number")
    first = random_condition(ctx, table, kinds=("category",))
    rows = [r for r in ctx.db[table.name] if matches(r, first[0], first[1], first[2])]
    second = required_condition(ctx, table, kinds=("number", "date"), rows=rows)
    shown = display_column(ctx, table, exclude=(first[0].name, second[0].name))
    p1 = condition_text(ctx, table, *first[:3])
    p2 = condition_text(ctx, table, *second[:3])
    question = ctx.say("filter_two_conditions", plural_shown_words=plural(shown.words),
                       table_name=table.name, p1=p1, p2=p2, shown_words=shown.words,
                       table_singular=table.singular)
    return question, f"SELECT {shown.name} FROM {table.name} WHERE {first[3]} AND {second[3]}"


def filter_all_columns(ctx: Context):
    table = ctx.pick(ctx.schema.tables)
    cond = required_condition(ctx, table)
    phrase = condition_text(ctx, table, *cond[:3])
    question = ctx.say("filter_all_columns", table_name=table.name, phrase=phrase)
    return question, f"SELECT * FROM {table.name} WHERE {cond[3]}"


def filter_two_columns(ctx: Context):
    table = ctx.pick(ctx.schema.tables)
    cond = required_condition(ctx, table)
    cols = [c for c in table.of_kind("label", "category", "number", "date") if c.name != cond[0].name]
    if len(cols) < 2:
        return None
    a, b = ctx.rng.sample(cols, 2)
    phrase = condition_text(ctx, table, *cond[:3])
    question = ctx.say("filter_two_columns", a_words=a.words, b_words=b.words,
                       table_name=table.name, phrase=phrase, table_singular=table.singular)
    return question, f"SELECT {a.name}, {b.name} FROM {table.name} WHERE {cond[3]}"


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
        question = ctx.say("aggregate_count", table_name=table.name)
        return question, f"SELECT COUNT(*) FROM {table.name}"
    cond = required_condition(ctx, table)
    phrase = condition_text(ctx, table, *cond[:3])
    question = ctx.say("aggregate_count_2", table_name=table.name, phrase=phrase)
    return question, f"SELECT COUNT(*) FROM {table.name} WHERE {cond[3]}"


def aggregate_number(ctx: Context):
    table = ctx.table_with("number")
    col = ctx.pick(table.of_kind("number"))
    func, word = aggregate_for(ctx, col)
    where, phrase = "", ""
    if ctx.rng.random() < 0.5:
        cond = random_condition(ctx, table, kinds=("category", "date"))
        if cond:
            where = f" WHERE {cond[3]}"
            phrase = " " + condition_text(ctx, table, *cond[:3])
    question = ctx.say("aggregate_number", word=word, col_words=col.words, table_name=table.name,
                       phrase=phrase)
    return question, f"SELECT {func}({col.name}) FROM {table.name}{where}"


# --- group ------------------------------------------------------------------------------

def group_count(ctx: Context):
    table = ctx.table_with("category")
    col = ctx.pick(table.of_kind("category"))
    question = ctx.say("group_count", table_name=table.name, col_words=col.words)
    return question, f"SELECT {col.name}, COUNT(*) FROM {table.name} GROUP BY {col.name}"


def group_aggregate(ctx: Context):
    table = ctx.table_with("category", "number")
    col = ctx.pick(table.of_kind("category"))
    num = ctx.pick(table.of_kind("number"))
    func, word = aggregate_for(ctx, num)
    question = ctx.say("group_aggregate", word=word, num_words=num.words, table_name=table.name,
                       col_words=col.words)
    return question, f"SELECT {col.name}, {func}({num.name}) FROM {table.name} GROUP BY {col.name}"


def group_having(ctx: Context):
    table = ctx.table_with("category")
    col = ctx.pick(table.of_kind("category"))
    counts = {}
    for v in ctx.values(table, col):
        counts[v] = counts.get(v, 0) + 1
    top = max(counts.values())
    if top < 2:
        return None
    k = ctx.rng.randint(1, top - 1)
    if ctx.rng.random() < 0.5:
        question = ctx.say("group_having", plural_col_words=plural(col.words), k=k,
                           table_name=table.name)
        return question, f"SELECT {col.name} FROM {table.name} GROUP BY {col.name} HAVING COUNT(*) > {k}"
    k += 1
    question = ctx.say("group_having_2", plural_col_words=plural(col.words), k=k,
                       table_name=table.name)
    return question, f"SELECT {col.name} FROM {table.name} GROUP BY {col.name} HAVING COUNT(*) >= {k}"


# --- order ------------------------------------------------------------------------------

def sortable(ctx: Context, table: Table) -> list[Column]:
    return [c for c in table.of_kind("number", "date") if has_unique(ctx, table, c)]


def sorted_column(ctx: Context) -> tuple[Table, Column, Column]:
    """(table, a column without ties to sort it by, a column to show); NoQuestion if none."""
    tables = [t for t in ctx.schema.tables if sortable(ctx, t)]
    if not tables:
        raise NoQuestion
    table = ctx.pick(tables)
    col = ctx.pick(sortable(ctx, table))
    return table, col, display_column(ctx, table, exclude=(col.name,))


def order_top(ctx: Context):
    table, col, shown = sorted_column(ctx)
    desc = ctx.rng.random() < 0.6
    if col.kind == "date":
        most = "most recent" if desc else "earliest"
    else:
        most = ctx.pick(("highest", "largest")) if desc else ctx.pick(("lowest", "smallest"))
    direction = "DESC" if desc else "ASC"
    if ctx.rng.random() < 0.35:
        question = ctx.say("order_top", shown_words=shown.words, table_singular=table.singular,
                           most=most, col_words=col.words)
        return question, f"SELECT {shown.name} FROM {table.name} ORDER BY {col.name} {direction} LIMIT 1"
    k = ctx.rng.randint(2, 5)
    question = ctx.say("order_top_2", plural_shown_words=plural(shown.words), k=k,
                       table_name=table.name, most=most, col_words=col.words)
    return question, f"SELECT {shown.name} FROM {table.name} ORDER BY {col.name} {direction} LIMIT {k}"


def order_sorted_list(ctx: Context):
    table, col, shown = sorted_column(ctx)
    desc = ctx.rng.random() < 0.5
    how = ctx.pick(("from highest to lowest", "in descending order")) if desc else \
        ctx.pick(("from lowest to highest", "in ascending order"))
    direction = "DESC" if desc else "ASC"
    where, phrase = "", ""
    if ctx.rng.random() < 0.5:
        cond = random_condition(ctx, table, kinds=("category",))
        if cond:
            where, phrase = f" WHERE {cond[3]}", " " + condition_text(ctx, table, *cond[:3])
    question = ctx.say("order_sorted_list", plural_shown_words=plural(shown.words),
                       plural_col_words=plural(col.words), table_name=table.name, phrase=phrase,
                       col_words=col.words, how=how, shown_words=shown.words)
    return question, (f"SELECT {shown.name}, {col.name} FROM {table.name}{where} "
                      f"ORDER BY {col.name} {direction}")


# --- join -------------------------------------------------------------------------------

def join_on(child: Table, fk: Column, parent: Table) -> str:
    return f"{parent.name} ON {child.name}.{fk.name} = {parent.name}.id"


def join_child_by_parent(ctx: Context):
    """Child rows filtered on a parent attribute: orders of customers from Canada."""
    child, fk, parent = ctx.link(parent_kinds=("category",))
    some_child = ctx.pick(ctx.db[child.name])
    parent_row = next(r for r in ctx.db[parent.name] if r["id"] == some_child[fk.name])
    col = ctx.pick(parent.of_kind("category"))
    value = parent_row[col.name]
    shown = display_column(ctx, child)
    phrase = condition_text(ctx, parent, col, "=", value)
    # "... whose department is whose name is Sales" would not read: no second "whose".
    key = "join_child_by_parent_whose" if phrase.startswith("whose") else "join_child_by_parent"
    question = ctx.say(key, plural_shown_words=plural(shown.words), child_name=child.name,
                       parent_name=parent.name, phrase=phrase, shown_words=shown.words,
                       child_singular=child.singular, parent_singular=parent.singular)
    return question, (f"SELECT {child.name}.{shown.name} FROM {child.name} "
                      f"JOIN {join_on(child, fk, parent)} "
                      f"WHERE {parent.name}.{col.name} = {sql_literal(value)}")


def join_pair_labels(ctx: Context):
    """Each child with its parent's label: employees with their department name."""
    child, fk, parent = ctx.link(parent_kinds=("label",))
    shown = display_column(ctx, child)
    plabel = parent.label
    question = ctx.say("join_pair_labels", shown_words=shown.words, child_singular=child.singular,
                       plabel_words=plabel.words, parent_singular=parent.singular,
                       plural_shown_words=plural(shown.words), child_name=child.name,
                       plural_plabel_words=plural(plabel.words), parent_name=parent.name)
    return question, (f"SELECT {child.name}.{shown.name}, {parent.name}.{plabel.name} FROM {child.name} "
                      f"JOIN {join_on(child, fk, parent)}")


def join_count_per_parent(ctx: Context):
    """How many children per parent label: orders per customer."""
    child, fk, parent = ctx.link(parent_kinds=("label",))
    plabel = parent.label
    question = ctx.say("join_count_per_parent", child_name=child.name,
                       parent_singular=parent.singular, plabel_words=plabel.words)
    return question, (f"SELECT {parent.name}.{plabel.name}, COUNT(*) FROM {child.name} "
                      f"JOIN {join_on(child, fk, parent)} GROUP BY {parent.name}.{plabel.name}")


def join_aggregate_by_parent(ctx: Context):
    """An aggregate of child numbers over a parent filter: total amount for customers from Canada."""
    child, fk, parent = ctx.link(parent_kinds=("category",), child_kinds=("number",))
    some_child = ctx.pick(ctx.db[child.name])
    parent_row = next(r for r in ctx.db[parent.name] if r["id"] == some_child[fk.name])
    col = ctx.pick(parent.of_kind("category"))
    value = parent_row[col.name]
    num = ctx.pick(child.of_kind("number"))
    func, word = aggregate_for(ctx, num)
    phrase = condition_text(ctx, parent, col, "=", value)
    question = ctx.say("join_aggregate_by_parent", word=word, num_words=num.words,
                       child_name=child.name, parent_name=parent.name, phrase=phrase)
    return question, (f"SELECT {func}({child.name}.{num.name}) FROM {child.name} JOIN {join_on(child, fk, parent)} "
                      f"WHERE {parent.name}.{col.name} = {sql_literal(value)}")


def join_parent_by_child(ctx: Context):
    """Distinct parents having a child that matches: customers with a cancelled order."""
    child, fk, parent = ctx.link(parent_kinds=("label",),
                                 child_kinds=("category", "number", "date"))
    cond = required_condition(ctx, child)
    col, op, value, _ = cond
    plabel = parent.label
    phrase = condition_text(ctx, child, col, op, value)
    question = ctx.say("join_parent_by_child", plural_plabel_words=plural(plabel.words),
                       parent_name=parent.name, child_name=child.name, phrase=phrase,
                       child_singular=child.singular)
    return question, (f"SELECT DISTINCT {parent.name}.{plabel.name} FROM {parent.name} "
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
    question = ctx.say("join_through_link", plural_a_label_words=plural(a.label.words),
                       a_name=a.name, link_singular=link.singular, b_singular=b.singular,
                       value=value, a_label_words=a.label.words, a_singular=a.singular)
    return question, (f"SELECT {a.name}.{a.label.name} FROM {a.name} "
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

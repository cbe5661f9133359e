"""Schema-constrained SQL: the CREATE TABLE statements in a prompt -> a llama.cpp grammar
(GBNF) under which a model can only write SQL whose bare words are SQL keywords, functions
or names that schema defines.

Model option ``sql_grammar_from`` names the template variable holding the DDL; each request
then carries the grammar made from that variable's value in the body field ``grammar`` (the
field llama.cpp's server reads; the local engine applies it while decoding). Small models
fail mostly on names ("no such column": ``person.id`` where the key is ``patient_no``); the
grammar makes those answers impossible, not the wrong logic.

The grammar is lexical: it constrains words, not the statement's structure, with one
exception: FROM and JOIN are followed by a table (or FROM by a subquery's ``(``; FROM also
ends ``EXTRACT(YEAR FROM ...)``).
- keywords and functions: in upper or in lower case; type names only after ``::``, and
  DATE, TIME, TIMESTAMP also before a string (``DATE '2024-01-31'``; ``CAST(x AS INTEGER)``
  takes any word after AS);
- bare identifiers: a column of the DDL, as written there or in lower case (what
  PostgreSQL folds it to), or an alias ``T1``..``T9`` (the style of sql-create-context); a
  name the DDL quoted with capitals or spaces only in its quoted form; a table only after
  FROM or JOIN, or as a column's qualifier;
- ``x.y``: y is a column of table x (``vessel.id`` is impossible where vessel has no id),
  or any column after an alias ``T1.``; ``s.t``: a table t of schema s;
- ``AS <word>`` may name any alias, but a later bare reference to it must be a known name
  (a context-free grammar has no memory of the alias);
- numbers, 'string literals', operators, ``( ) ,``; no comments;
- the answer starts with SELECT or WITH and ends at most with one ``;``.

Only light Python: the backend imports this.
"""

from __future__ import annotations

import functools
import re

from pg_llm import ddl as ddl_reader
from pg_llm.errors import FeatureNotSupported, InvalidParameter

# Bounds: a grammar the engine must compile for every request stays small. 2,000 names of
# ~20 characters are ~100 KB of GBNF; the local engine refuses bodies' grammars over
# MAX_GRAMMAR_CHARS (pg_llm.serve.api.chat_params).
MAX_NAMES = 2000
MAX_GRAMMAR_CHARS = 200_000

# The request body field that carries a grammar, per provider that honours one. llama.cpp's
# server and the local engine read "grammar"; vLLM's field is "guided_grammar" (its own
# grammar dialect, not tested here) and hosted OpenAI rejects unknown fields: they refuse.
GRAMMAR_FIELDS = {"local": "grammar"}

KEYWORDS = (
    "SELECT", "DISTINCT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE",
    "ILIKE", "BETWEEN", "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC", "LIMIT", "OFFSET",
    "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "NATURAL", "ON", "USING",
    "AS", "UNION", "ALL", "INTERSECT", "EXCEPT", "CASE", "WHEN", "THEN", "ELSE", "END",
    "EXISTS", "ANY", "SOME", "TRUE", "FALSE", "WITH", "NULLS", "FIRST", "LAST", "FILTER",
    "OVER", "PARTITION", "ROWS", "INTERVAL", "CAST", "EXTRACT", "YEAR", "MONTH", "DAY",
    "HOUR", "MINUTE", "SECOND", "WEEK", "QUARTER", "DOW", "EPOCH", "CURRENT_DATE",
    "CURRENT_TIMESTAMP", "LOCALTIMESTAMP",
    # functions
    "COUNT", "SUM", "AVG", "MIN", "MAX", "ROUND", "ABS", "CEIL", "FLOOR", "LOWER", "UPPER",
    "LENGTH", "TRIM", "SUBSTRING", "SUBSTR", "REPLACE", "CONCAT", "COALESCE", "NULLIF",
    "GREATEST", "LEAST", "NOW", "DATE_PART", "DATE_TRUNC", "AGE", "TO_CHAR", "STRING_AGG",
    "ROW_NUMBER", "RANK", "DENSE_RANK",
    # type names (CAST, typed literals)
    "DATE", "TIMESTAMP", "TIME", "INTEGER", "INT", "BIGINT", "SMALLINT", "NUMERIC",
    "DECIMAL", "REAL", "FLOAT", "DOUBLE", "PRECISION", "TEXT", "VARCHAR", "CHAR", "BOOLEAN",
)
# Keywords a table follows (from-table); FROM also ends EXTRACT(<unit> FROM ...) (unit-from)
# and opens a subquery (from-open).
TABLE_KEYWORDS = ("FROM", "JOIN")
# Type names are no bare words: a small model copies a column's type from the DDL in place of
# its name (`AVG(smallint)`). They come after `::`; `CAST(x AS INTEGER)` is an AS-word.
# PRECISION stays a word (DOUBLE PRECISION after AS).
TYPE_NAMES = ("DATE", "TIMESTAMP", "TIME", "INTEGER", "INT", "BIGINT", "SMALLINT", "NUMERIC",
              "DECIMAL", "REAL", "FLOAT", "DOUBLE", "TEXT", "VARCHAR", "CHAR", "BOOLEAN")
# Only the date and time types also open a typed literal (`DATE '2024-01-31'`), as people
# write them; with every type, the model wrote `AVG(smallint 'A')` where a column belongs.
LITERAL_TYPES = ("DATE", "TIMESTAMP", "TIME")
DATE_UNITS = ("YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "WEEK", "QUARTER", "DOW",
              "EPOCH")
# '.' is not among them: it only joins a table (or alias) to one of its columns, or a number
SYMBOLS = ("<>", "!=", "<=", ">=", "||", "=", "<", ">", "+", "*", "%", "(", ")", ",")
# '-' and '/' are kept apart: right after them only a word, '(' or a string may follow without
# a space, so that an answer cannot open a comment ('--', '/*') and hide text from the check
OPERATORS_BEFORE_WORDS = ("-", "/")

_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")


def _forms(kind: str, text: str) -> tuple[str, ...]:
    """How a name of the DDL may be written in a query: as written, folded to lower case, or
    quoted in lower case (bare in the DDL); exactly as quoted, and bare too when quoting
    changes nothing (quoted in the DDL)."""
    if kind == "word":
        return tuple(dict.fromkeys((text, text.lower(), f'"{text.lower()}"')))
    inner = ddl_reader.name(kind, text)
    return (text, inner) if _BARE.match(inner) else (text,)


def schema_names(ddl: str) -> tuple[list[str], list[str]]:
    """(tables, columns) named by the CREATE TABLE statements in `ddl`, in order, without
    duplicates, as PostgreSQL names them. Other text (a question in a comment, prose, other
    statements) is ignored. A schema-qualified table gives both names (``sales.orders``:
    ``sales`` and ``orders``)."""
    tables: dict[str, None] = {}
    columns: dict[str, None] = {}
    for parts, cols in ddl_reader.tables(ddl):
        for part in parts:
            tables.setdefault(ddl_reader.name(*part))
        for col in cols:
            columns.setdefault(ddl_reader.name(*col))
    return list(tables), list(columns)


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in_either_case(words) -> str:
    """GBNF alternatives: each word in upper and in lower case."""
    return " | ".join(_literal(t) for word in words for t in (word, word.lower()))


class _Trie:
    """Words sharing prefixes share one path of the grammar: after a space the grammar
    engine follows a few first letters instead of one path per word (with one path per
    word, filtering the whole vocabulary took ~1 s per token on SmolLM2's 49k tokens)."""

    def __init__(self):
        self.children: dict[str, _Trie] = {}
        self.ends: set[str] = set()  # what may follow a whole word: "" (nothing) or a rule

    def add(self, word: str, then: str = "") -> None:
        node = self
        for ch in word:
            node = node.children.setdefault(ch, _Trie())
        node.ends.add(then)

    def expression(self) -> str:
        alternatives = []
        for ch, child in sorted(self.children.items()):
            run, node = ch, child
            while len(node.children) == 1 and not node.ends:  # a single path: one literal
                (nxt, node), = node.children.items()
                run += nxt
            rest = node.expression()
            alternatives.append(_literal(run) + (f" {rest}" if rest else ""))
        alternatives += sorted(e for e in self.ends if e)
        if not alternatives:
            return ""
        body = " | ".join(alternatives)
        if "" in self.ends:
            return f"({body})?"
        return f"({body})" if len(alternatives) > 1 else body


def build_grammar(ddl_tables) -> str:
    """The GBNF of SQL over the tables of `ddl_reader.tables(ddl)`: bare words are keywords,
    tables and columns; `x.y` is a column y of table x (or of an alias); `s.t` a table t of
    schema s."""
    rules: dict[str, str] = {}
    names = {ddl_reader.name(*t) for parts, cols in ddl_tables for t in (*parts, *cols)}
    if len(names) > MAX_NAMES:
        raise InvalidParameter(f"the schema names {len(names)} tables and columns; a SQL "
                               f"grammar allows at most {MAX_NAMES}",
                               hint="give the model the DDL of the tables the question needs")
    words, every_column, schemas, tables = _Trie(), _Trie(), {}, _Trie()
    every_column.add("*")
    for keyword in KEYWORDS:
        if keyword in TABLE_KEYWORDS or keyword in TYPE_NAMES:
            continue  # only in from-table, cast and typed-literal
        words.add(keyword)
        words.add(keyword.lower())
    for n, (parts, cols) in enumerate(ddl_tables):
        table_columns = _Trie()
        table_columns.add("*")
        for col in cols:
            for form in _forms(*col):
                words.add(form)
                every_column.add(form)
                table_columns.add(form)
        rules[f"columns-{n}"] = table_columns.expression()
        *schema, table = parts
        column_forms = {f for col in cols for f in _forms(*col)}
        for form in _forms(*table):
            # a table name is a word only as a column's qualifier (or where a column has
            # the same name); after FROM and JOIN it comes through from-table
            if form in column_forms:
                words.add(form)
            words.add(form, f'"." columns-{n}')
            tables.add(form)
            if schema:
                schemas.setdefault(schema[-1], _Trie()).add(form)
                schemas[schema[-1]].add(form, f'"." columns-{n}')
    for k, (schema, schema_tables) in enumerate(schemas.items()):
        rules[f"tables-{k}"] = schema_tables.expression()
        for form in _forms(*schema):
            words.add(form, f'"." tables-{k}')
            tables.add(form, f'"." tables-{k}')
    rules["table"] = tables.expression()
    rules["every-column"] = every_column.expression()
    symbol_alts = " | ".join(_literal(s) for s in SYMBOLS)
    grammar = f"""root ::= ws? start after-word
start ::= "SELECT" | "select" | "WITH" | "with"
after-word ::= end | ws word after-word | ws? sym after-sym | ws? op after-op | ws from-open after-sym
after-sym ::= end | ws? word after-word | ws? sym after-sym | ws? op after-op | ws? from-open after-sym
after-op ::= ws? word after-word | ws? opener after-sym | ws sym after-sym | ws op after-op
end ::= ws? ";"?
word ::= known | alias | number | alias-def | from-table | unit-from | typed-literal
typed-literal ::= ({_in_either_case(LITERAL_TYPES)}) ws string
cast ::= "::" ws? type-name
type-name ::= {_in_either_case(TYPE_NAMES)}
from-table ::= ({_in_either_case(TABLE_KEYWORDS)}) ws (table | [tT] [1-9])
from-open ::= ({_in_either_case(["FROM"])}) ws? "("
unit-from ::= ({_in_either_case(DATE_UNITS)}) ws ({_in_either_case(["FROM"])})
known ::= {words.expression()}
alias ::= [tT] [1-9] ("." every-column)?
alias-def ::= ("AS" | "as") ws [a-zA-Z_] [a-zA-Z0-9_]{{0,30}}
number ::= [0-9]{{1,18}} ("." [0-9]{{1,18}})?
sym ::= symbol | string | cast
opener ::= "(" | string
op ::= {" | ".join(_literal(o) for o in OPERATORS_BEFORE_WORDS)}
string ::= "'" ( [^'\\x00-\\x1F] | "''" ){{0,200}} "'"
symbol ::= {symbol_alts}
ws ::= [ \\t\\n]{{1,8}}
""" + "".join(f"{name} ::= {body}\n" for name, body in rules.items())
    if len(grammar) > MAX_GRAMMAR_CHARS:
        raise InvalidParameter(f"the SQL grammar of this schema has {len(grammar)} characters; "
                               f"at most {MAX_GRAMMAR_CHARS} are sent",
                               hint="give the model the DDL of the tables the question needs")
    return grammar


@functools.lru_cache(maxsize=256)
def _grammar_for_tables(ddl_tables: tuple) -> str:
    return build_grammar(ddl_tables)


def grammar_for_ddl(ddl: str, *, variable: str = "ddl") -> str:
    """The grammar of the schema that `ddl` (a prompt variable's value) declares. Prompts
    of one schema share it: the cache is keyed by the tables, not by the whole text."""
    tables = ddl_reader.tables(ddl or "")
    if not tables:
        raise InvalidParameter(f'no CREATE TABLE statement in the value of "{variable}", '
                               "from which the SQL grammar is made",
                               detail="model option sql_grammar_from names that variable",
                               hint=f'put the schema\'s DDL in "{variable}", or turn the '
                                    "grammar off: llm_alter_model(model, "
                                    """'{"sql_grammar_from": null}')""")
    return _grammar_for_tables(tuple((tuple(parts), tuple(cols)) for parts, cols in tables))


def parse_option(value, name: str = "sql_grammar_from") -> str:
    """The value of sql_grammar_from (or sql_infer_joins_from): a template variable's name
    (checked against the template by check_model_option, which knows it)."""
    from pg_llm import templates

    if not isinstance(value, str):
        raise InvalidParameter(f"option {name} must name a template variable, got {value!r}",
                               hint=f"""e.g. options => '{{"{name}": "content"}}'""")
    return templates.check_identifier(value.strip(), name)


def check_schema_variable(name: str, variable: str, prompt_columns: list[str],
                          options: dict) -> None:
    """`variable` (the value of option `name`) is one of the model's template variables, and
    the model has no output_columns (its answer is SQL, not a JSON object)."""
    if variable not in prompt_columns:
        raise InvalidParameter(f'{name} names "{variable}", which is not a variable '
                               "of the model's templates",
                               hint="the variables are " + ", ".join(prompt_columns))
    if options.get("output_columns"):
        raise InvalidParameter(f"a model has either output_columns or {name}",
                               hint="the option reads a plain SQL answer; use two models")


def check_model_option(variable: str, prompt_columns: list[str], provider: str,
                       options: dict) -> None:
    """A model may decode under a SQL grammar when `variable` is one of its template's
    variables, its engine's provider takes a grammar, and it has no output_columns (the
    answer is SQL, not a JSON object)."""
    check_schema_variable("sql_grammar_from", variable, prompt_columns, options)
    require_grammar_provider(provider, "")


def require_grammar_provider(provider: str | None, engine: str) -> str:
    """The body field for the grammar; 0A000 where the provider would ignore or reject it
    (silently answering unconstrained would hide that the option does nothing)."""
    provider = provider or "openai"
    field = GRAMMAR_FIELDS.get(provider)
    if field is None:
        where = f' of engine "{engine}"' if engine else ""
        raise FeatureNotSupported(
            f"provider {provider!r}{where} does not take a SQL grammar (sql_grammar_from)",
            detail="the grammar is sent in the request body field \"grammar\", which the "
                   "local engine (pg-llm serve) applies while decoding; hosted OpenAI-"
                   "compatible APIs reject or ignore it",
            hint="use a model on an engine with provider 'local', or remove the option: "
                 """llm_alter_model(model, '{"sql_grammar_from": null}')""")
    return field

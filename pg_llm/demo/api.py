"""Body of `llm_generate_demo_data(...)`: writes the generator's output into two tables in
the caller's current schema (the function does not pin search_path)."""

from __future__ import annotations

from pg_llm.errors import InvalidParameter

from .generator import generate, long_format_rows

MAX_EXAMPLES = 100_000


def _qualified(plpy, name: str, argument: str) -> str:
    """'demo_data' or 'myschema.demo_data' (quoted identifiers allowed) -> safe SQL name."""
    if not name or not name.strip():
        raise InvalidParameter(f"{argument} must not be empty",
                               hint="Pass a table name such as 'demo_data'.")
    try:
        parts = plpy.execute(plpy.prepare("SELECT parse_ident($1) AS p", ["text"]), [name])[0]["p"]
    except plpy.SPIError:
        raise InvalidParameter(f"{argument} is not a valid table name: {name!r}",
                               hint="Use an identifier like demo_data or myschema.demo_data.") from None
    if len(parts) > 2:
        raise InvalidParameter(f"{argument} has too many dotted parts: {name!r}",
                               hint="Use table or schema.table.")
    return ".".join(plpy.quote_ident(p) for p in parts)


def generate_demo_data(plpy, train_table: str, eval_table: str, n_train: int, n_eval: int,
                       seed: int) -> list[dict]:
    for arg, value, low in (("n_train", n_train, 1), ("n_eval", n_eval, 0)):
        if value is None or not low <= value <= MAX_EXAMPLES:
            raise InvalidParameter(f"{arg} must be between {low} and {MAX_EXAMPLES}, got {value}",
                                   hint="The tutorial uses n_train => 400, n_eval => 60.")
    if seed is None:
        raise InvalidParameter("seed must not be NULL", hint="Any integer works; the tutorial uses 42.")
    train_name = _qualified(plpy, train_table, "train_table")
    eval_name = _qualified(plpy, eval_table, "eval_table")
    if train_name == eval_name:
        raise InvalidParameter("train_table and eval_table must differ",
                               detail=f"both are {train_name}",
                               hint="The tutorial uses demo_data and demo_eval.")

    train, evals = generate(n_train=n_train, n_eval=n_eval, seed=seed)

    plpy.execute(f"DROP TABLE IF EXISTS {train_name}")
    plpy.execute(f"CREATE TABLE {train_name} (chat_id int, message_id int, role text, "
                 f"content text, PRIMARY KEY (chat_id, message_id))")
    rows = long_format_rows(train)
    insert = plpy.prepare(
        f"INSERT INTO {train_name} SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::text[])",
        ["int[]", "int[]", "text[]", "text[]"])
    plpy.execute(insert, [list(col) for col in zip(*rows)])

    plpy.execute(f"DROP TABLE IF EXISTS {eval_name}")
    plpy.execute(f"CREATE TABLE {eval_name} (id int PRIMARY KEY, content text, gold_sql text, "
                 f"setup_sql text, schema_key text, kind text)")
    if evals:
        insert = plpy.prepare(
            f"INSERT INTO {eval_name} SELECT * FROM unnest($1::int[], $2::text[], $3::text[], "
            f"$4::text[], $5::text[], $6::text[])",
            ["int[]", "text[]", "text[]", "text[]", "text[]", "text[]"])
        plpy.execute(insert, [[e.id for e in evals], [e.content for e in evals],
                              [e.gold_sql for e in evals], [e.setup_sql for e in evals],
                              [e.schema_key for e in evals], [e.kind for e in evals]])

    train_schemas = sorted({e.schema_key for e in train})
    eval_schemas = sorted({e.schema_key for e in evals})
    return [
        {"table_name": train_name, "row_count": len(rows),
         "description": f"{len(train)} training conversations (system, user, assistant) "
                        f"on {len(train_schemas)} schemas: {', '.join(train_schemas)}"},
        {"table_name": eval_name, "row_count": len(evals),
         "description": f"{len(evals)} held-out questions on {len(eval_schemas)} schemas "
                        f"never used in training: {', '.join(eval_schemas)}"},
    ]

"""The one module that reads and writes llm.cache, the answer cache (pg_llm.answer_cache
decides what is cached and under which key). Runs in the backend as the extension owner."""

from __future__ import annotations

from pg_llm.catalog.plans import execute as _exec


def live_answers(plpy, keys: list[str]) -> list[dict]:
    """Rows of these keys that have not expired: key, answer, finish_reason, prompt_tokens,
    completion_tokens, provider_model_id."""
    return _exec(plpy, """
        SELECT key, answer, finish_reason, prompt_tokens, completion_tokens, provider_model_id
        FROM llm.cache
        WHERE key = ANY ($1) AND (expires_at IS NULL OR expires_at > pg_catalog.now())""",
                 ["text[]"], [keys])


def put(plpy, model: str, rows: list[tuple], ttl_s: int) -> None:
    """Insert or replace (key, version, provider_model_id, answer, finish_reason,
    prompt_tokens, completion_tokens) rows; ttl_s > 0 makes them expire."""
    columns = [list(c) for c in zip(*rows)]
    _exec(plpy, """
        INSERT INTO llm.cache AS c (key, model, version, provider_model_id, answer,
                                    finish_reason, prompt_tokens, completion_tokens,
                                    expires_at)
        SELECT k, $1, v, p, a, f, pt, ct,
               CASE WHEN $9 > 0 THEN pg_catalog.now() + $9 * interval '1 second' END
        FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                    $7::int[], $8::int[]) AS u(k, v, p, a, f, pt, ct)
        ON CONFLICT (key) DO UPDATE
        SET answer = excluded.answer, finish_reason = excluded.finish_reason,
            prompt_tokens = excluded.prompt_tokens,
            completion_tokens = excluded.completion_tokens,
            created_at = excluded.created_at, expires_at = excluded.expires_at""",
          ["text", "text[]", "int[]", "text[]", "text[]", "text[]", "int[]", "int[]", "int8"],
          [model, *columns, ttl_s])


def prune(plpy, model: str, max_rows: int) -> None:
    """Delete the model's expired rows and, with max_rows > 0, all but its newest max_rows."""
    _exec(plpy, """
        DELETE FROM llm.cache
        WHERE model = $1
          AND (expires_at <= pg_catalog.now()
               OR ($2 > 0 AND key IN (SELECT key FROM llm.cache WHERE model = $1
                                      ORDER BY created_at DESC, key OFFSET $2)))""",
          ["text", "int8"], [model, max_rows])

-- Parameters: a custom plan sees the value at plan time, a generic plan only when it runs.
PREPARE one(text) AS SELECT content, quals FROM echo_t WHERE content = $1;
PREPARE many(text[]) AS SELECT content, quals FROM echo_t WHERE content = ANY ($1);

SET plan_cache_mode = force_custom_plan;
EXPLAIN (COSTS OFF) EXECUTE one('p');
EXECUTE one('p');
EXPLAIN (COSTS OFF) EXECUTE many('{p,q,p}');
EXECUTE many('{p,q,p}');

SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE one('p');
EXECUTE one('p');
EXECUTE one('r');
EXPLAIN (COSTS OFF) EXECUTE many('{p,q}');
EXECUTE many('{p,q}');
RESET plan_cache_mode;

-- Inside PL/pgSQL, variables are parameters too.
DO $$
DECLARE
    v text := 'from plpgsql';
    got text;
BEGIN
    SELECT answer INTO got FROM echo_t WHERE content = v;
    RAISE NOTICE '%', got;
END
$$;
DEALLOCATE one;
DEALLOCATE many;

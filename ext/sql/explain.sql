-- EXPLAIN shows what a scan will send: the pushed quals (LLM Quals), the prompt columns,
-- and, when their values are constants at plan time, the number of prompts.
EXPLAIN (COSTS OFF) SELECT answer FROM echo_t WHERE content = 'a';
-- = ANY: one prompt per distinct non-null element.
EXPLAIN (COSTS OFF) SELECT answer FROM echo_t WHERE content = ANY ('{a,b,a,NULL}');
EXPLAIN (COSTS OFF) SELECT answer FROM echo_t WHERE content IN ('x', 'y', 'z');
-- Two prompt columns: the product of their values.
EXPLAIN (COSTS OFF) SELECT answer FROM echo2
WHERE question IN ('q1', 'q2', 'q3') AND lang = ANY ('{en,fr}');
-- Quals on one column are ANDed: the values both allow.
EXPLAIN (COSTS OFF) SELECT answer FROM echo2
WHERE question IN ('q1', 'q2', 'q3') AND question = ANY ('{q2,q3,q4}') AND lang = 'en';
EXPLAIN (COSTS OFF) SELECT answer FROM echo2
WHERE question = 'q1' AND question = 'q2' AND lang = 'en';  -- never runs: the planner sees it
-- Known only when the scan runs: no count.
EXPLAIN (COSTS OFF) SELECT answer FROM echo_t WHERE content = now()::text;
EXPLAIN (COSTS OFF) SELECT answer FROM echo2 WHERE question = 'q1';
-- Not pushable (only = and = ANY are): left to the filter, nothing sent for it.
EXPLAIN (COSTS OFF) SELECT answer FROM echo_t WHERE content LIKE 'a%';
EXPLAIN (COSTS OFF) SELECT answer FROM echo_t WHERE content = 'a' AND answer <> 'b';
-- Machine-readable formats carry the same properties.
EXPLAIN (COSTS OFF, FORMAT JSON) SELECT answer FROM echo_t WHERE content = ANY ('{a,b}');
EXPLAIN (COSTS OFF, VERBOSE) SELECT answer FROM echo_t WHERE content = 'a';
-- ANALYZE adds what the scan did: calls into Python and rewinds.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT answer FROM echo_t WHERE content = ANY ('{a,b}');
-- The planner's cost: one call (10) plus pg_llm.prompt_cost (100) per prompt, so a model
-- scan is costed as the remote calls it makes; the engine or table option prompt_cost wins.
EXPLAIN SELECT answer FROM echo_t WHERE content IN ('x', 'y');
SET pg_llm.prompt_cost = 1;
EXPLAIN SELECT answer FROM echo_t WHERE content IN ('x', 'y');
RESET pg_llm.prompt_cost;
ALTER FOREIGN TABLE echo_t OPTIONS (ADD prompt_cost '50');
EXPLAIN SELECT answer FROM echo_t WHERE content IN ('x', 'y');
ALTER FOREIGN TABLE echo_t OPTIONS (DROP prompt_cost);
ALTER SERVER echo OPTIONS (ADD prompt_cost 'free');

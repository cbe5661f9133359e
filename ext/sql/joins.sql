-- Joins: the model table is the inner side of a nested loop, asked per outer value; the
-- outer values are batched into one = ANY call (pg_llm.join_batch_size) when known first.
EXPLAIN (COSTS OFF)
SELECT q.id, e.answer FROM questions q JOIN echo_t e ON e.content = q.text;
SELECT q.id, e.answer FROM questions q JOIN echo_t e ON e.content = q.text ORDER BY q.id;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT q.id, e.answer FROM questions q JOIN echo_t e ON e.content = q.text;

-- LATERAL, the way a user writes "ask the model for each row".
EXPLAIN (COSTS OFF)
SELECT q.id, a.answer FROM questions q,
LATERAL (SELECT answer FROM echo_t WHERE content = q.text) a;
SELECT q.id, a.answer FROM questions q,
LATERAL (SELECT answer FROM echo_t WHERE content = q.text) a ORDER BY q.id;

-- Without batching: one call per distinct outer value, repeated values rewind.
SET pg_llm.join_batch_size = 0;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT q.id, e.answer FROM questions q JOIN echo_t e ON e.content = q.text;
-- A batch of 2: the four outer values (three distinct) take two calls.
SET pg_llm.join_batch_size = 2;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT q.id, e.answer FROM questions q JOIN echo_t e ON e.content = q.text;
RESET pg_llm.join_batch_size;

-- Two prompt columns, one from the outer row and one constant.
EXPLAIN (COSTS OFF)
SELECT q.id, e.answer FROM questions q JOIN echo2 e ON e.question = q.text AND e.lang = 'en';
SELECT q.id, e.answer FROM questions q JOIN echo2 e ON e.question = q.text AND e.lang = 'en'
ORDER BY q.id;

-- A join that drops outer rows runs before the model, and the batch reads the rows it
-- keeps: the initplan joins both tables, so only 'three' is asked.
CREATE TABLE picked (id int PRIMARY KEY);
INSERT INTO picked VALUES (3);
ANALYZE picked;
EXPLAIN (COSTS OFF)
SELECT q.id, e.answer FROM questions q JOIN picked p ON p.id = q.id
JOIN echo_t e ON e.content = q.text;
SELECT q.id, e.answer, e.quals FROM questions q JOIN picked p ON p.id = q.id
JOIN echo_t e ON e.content = q.text;

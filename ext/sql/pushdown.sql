-- What the wrapper receives: the quals as JSON, and the columns the query reads.
SELECT content, answer, quals, needed FROM echo_t WHERE content = 'a';
SELECT content, quals FROM echo_t WHERE content = ANY ('{b,a,b}') ORDER BY content;
-- Expressions are evaluated by the executor, then sent as values.
SELECT content, quals FROM echo_t WHERE content = lower('ABC');
SELECT content, quals FROM echo_t WHERE content = 'n' || 1 + 1;
-- Quals on other columns are sent too (a model ignores them); PostgreSQL checks every qual
-- on the rows, and the ones it cannot push (LIKE) only there.
SELECT content, quals FROM echo_t WHERE content = 'a' AND answer = 'echo: a';
SELECT content, answer FROM echo_t WHERE content = 'a' AND answer LIKE 'echo%';
SELECT content, answer FROM echo_t WHERE content = 'a' AND answer LIKE 'nope%';
SELECT question, lang, answer FROM echo2
WHERE question IN ('q1', 'q2') AND lang = ANY ('{en,fr}') ORDER BY 1, 2;
-- A type the wrapper must convert: the value goes as text.
SELECT content, quals FROM echo_t WHERE content = 42::text;
-- NULL never matches =: no prompt is sent at all.
SELECT content, quals FROM echo_t WHERE content = NULL;

-- Step 4: the fine-tuned version answers with bare SQL. Then a prompt-engineered alternative
-- on the base model, for comparison in step 5.
\if :{?base_model} \else \set base_model smollm2-135m-instruct \endif
\if :{?question} \else
\set question 'CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, country TEXT, city TEXT, signup_year INT);\nCREATE TABLE orders (id INT PRIMARY KEY, customer_id INT REFERENCES customers(id), order_date DATE, amount NUMERIC(12,2), status TEXT);\n-- Which customers are from Canada? Give their names and cities.'
\endif

-- Same question as step 1; max_tokens is a column too, so request options are WHERE clauses.
SELECT answer, version, completion_tokens, round(latency_ms) AS latency_ms
FROM ft_sql
WHERE content = :'question' AND max_tokens = 1000;

-- Any version stays queryable: version 1 is the base model.
SELECT version, answer FROM ft_sql WHERE content = :'question' AND version = 1;

-- Prompt engineering instead of training: the base model with a template asking for SQL only.
SELECT llm_create_model('ft_sql_succinct',
    engine          => 'local',
    model_name      => :'base_model',
    prompt_template => E'Write one PostgreSQL query that answers the question. Reply with the SQL query only: no explanation, no markdown, no comments.\n\n{{content}}\n\nSQL:',
    predict         => 'answer',
    system_prompt   => 'Answer with one SQL query and nothing else.');

SELECT answer, completion_tokens FROM ft_sql_succinct WHERE content = :'question';

-- Step 3: fine-tune. A dry run shows tokens and cost; a budget caps what training may spend;
-- the real run trains a LoRA adapter in the local engine and becomes version 2 of ft_sql.
-- Variables: n_train (conversations to train on, default 300), n_epochs (default 3),
-- learning_rate_multiplier (default 2: measured best for transfer to real-style schemas,
-- docs/tutorial.md), out_dir (where the loss curve goes, default .demo/out).
\if :{?n_train} \else \set n_train 300 \endif
\if :{?n_epochs} \else \set n_epochs 3 \endif
\if :{?learning_rate_multiplier} \else \set learning_rate_multiplier 2 \endif
\if :{?out_dir} \else \set out_dir .demo/out \endif

-- demo_data has one row per message, so the first :n_train conversations are selected by
-- chat_id (a LIMIT would count messages, not conversations).
SELECT conversations, tokens, epochs, estimated_trained_tokens, estimated_usd, token_count_method
FROM llm_finetune('ft_sql',
    format('SELECT * FROM demo_data WHERE chat_id <= %s ORDER BY chat_id, message_id', :n_train),
    options => jsonb_build_object('n_epochs', :n_epochs,
                                   'learning_rate_multiplier', :learning_rate_multiplier),
    dry_run => true);
-- (psql: \gset re-runs the dry run above and keeps its numbers in variables dry_*.)
\gset dry_

-- A budget for this model: this run plus 20%. The local engine charges $0, so the budget
-- counts trained tokens (a hosted engine would also take max_usd).
SELECT * FROM llm_set_budget('ft_sql', max_tokens => (:dry_estimated_trained_tokens * 6 / 5)::bigint);

-- The real run: returns at once with a pending job id. Nothing is sent before this
-- statement commits; llm_wait below hands the job to the engine, where training runs.
SELECT job_id, status, conversations, estimated_trained_tokens, provider_job_id
FROM llm_finetune('ft_sql',
    format('SELECT * FROM demo_data WHERE chat_id <= %s ORDER BY chat_id, message_id', :n_train),
    options => jsonb_build_object('n_epochs', :n_epochs,
                                   'learning_rate_multiplier', :learning_rate_multiplier));

-- Wait for the model's latest job: one NOTICE per training step (loss, progress). Ctrl-C
-- stops waiting, not training: the job keeps running in the engine; wait again any time.
SELECT id, status, trained_tokens, cost_usd, finished_at - created_at AS duration
FROM llm_wait('ft_sql');

-- Version 2 is the fine-tuned adapter, and it is now the active version.
SELECT version, provider_model_id, job_id, cost_usd FROM llm.model_versions
WHERE model = 'ft_sql' ORDER BY version;
SELECT name, active_version FROM llm.models WHERE name = 'ft_sql';

-- The loss curve of the job, drawn from llm.job_events.
SELECT max(id) AS job_id FROM llm.jobs WHERE model = 'ft_sql' \gset
\setenv PG_LLM_JOB :job_id
\setenv PG_LLM_OUT :out_dir
\! pg-llm plot job "$PG_LLM_JOB" -o "$PG_LLM_OUT/loss.png"

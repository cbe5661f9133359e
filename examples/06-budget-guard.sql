-- Step 6: the budget guard. Step 3 capped ft_sql at 1.2x its training run and that run is
-- spent, so training on all of demo_data (more conversations than step 3 used) does not fit:
-- it is refused before anything is uploaded or trained.
\if :{?n_epochs} \else \set n_epochs 3 \endif

SELECT * FROM llm.budget_status WHERE target = 'ft_sql';

SELECT count(*) AS jobs_before FROM llm.jobs WHERE model = 'ft_sql' \gset

-- Expect: ERROR (SQLSTATE 53400) with a HINT on how to proceed.
\set ON_ERROR_STOP 0
\set VERBOSITY verbose
SELECT job_id, status FROM llm_finetune('ft_sql',
    'SELECT * FROM demo_data ORDER BY chat_id, message_id',
    options => jsonb_build_object('n_epochs', :n_epochs));
\set VERBOSITY default
\set ON_ERROR_STOP 1

SELECT :'LAST_ERROR_SQLSTATE' = '53400' AS refused,
       (SELECT count(*) FROM llm.jobs WHERE model = 'ft_sql') = :jobs_before AS no_new_job
\gset
\if :refused
\if :no_new_job
\echo 'Budget guard: the fine-tune was refused (SQLSTATE 53400) and no job was created.'
\else
\echo 'Budget guard FAILED: a job was created.'
SELECT 1/0 AS budget_guard_failed;
\endif
\else
\echo 'Budget guard FAILED: the fine-tune was not refused with SQLSTATE 53400.'
SELECT 1/0 AS budget_guard_failed;
\endif

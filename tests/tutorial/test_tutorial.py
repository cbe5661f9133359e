"""The tutorial, fast: examples/01..06 run through the real psql client, in order, against the
real local engine (`pg-llm serve`, started by the demo's own LocalEngineProcess) serving the tiny
random model. Each step's outcome is checked in the catalog and in what psql printed.

A random model writes nonsense, so accuracy is not asserted here (the real model's numbers
come from `make demo`); everything else a user sees is.
"""

from __future__ import annotations

import re

import pytest

from pg_llm_tutorial.processes import LocalEngineProcess, free_port
from pg_llm_tutorial.runner import EXAMPLES, StepFailed, run_step

N_GENERATE, N_EVAL, N_TRAIN, EVAL_LIMIT = 300, 10, 16, 4
# A random model rarely emits end-of-sequence: every answer is capped to stay fast.
ANSWER_TOKENS = 8


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory):
    from serve.tiny_checkpoint import build_tiny_checkpoint

    tiny = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny-llama")
    data = tmp_path_factory.mktemp("engine")
    engine = LocalEngineProcess(data / "data", free_port(),
                    ["--no-default-model", "--model", f"tiny={tiny}", "--threads", "2"],
                    log_path=data / "engine.log")
    engine.start()
    yield engine
    engine.stop()


def pg_env(db) -> dict:
    info = db.info
    return {"PGHOST": info.host, "PGPORT": str(info.port), "PGUSER": "postgres",
            "PGDATABASE": info.dbname}


def one(db, sql, *params):
    return db.execute(sql, params).fetchone()


def test_tutorial_steps(db, tiny_engine, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    variables = {"base_model": "tiny", "engine_url": tiny_engine.base_url,
                 "n_generate": N_GENERATE, "n_eval": N_EVAL, "n_train": N_TRAIN,
                 "n_epochs": 1, "eval_limit": EVAL_LIMIT, "out_dir": out_dir,
                 "answer_tokens": ANSWER_TOKENS, "max_tokens": ANSWER_TOKENS,
                 "eval_max_tokens": ANSWER_TOKENS}

    def step(name: str) -> str:
        try:
            return run_step(EXAMPLES / name, pg_env(db), variables, echo=False).output
        except StepFailed as exc:
            pytest.fail(f"{name} failed:\n{exc.output[-3000:]}\nengine log:\n{tiny_engine.log_tail()}")

    # 1. engine and model; the base model answers through the foreign table.
    out = step("01-engine-and-model.sql")
    assert one(db, "SELECT provider, base_url FROM llm.engines WHERE name = 'local'") == \
        ("local", tiny_engine.base_url)
    assert one(db, "SELECT base_model, prompt_template, predict, system_prompt, active_version "
                   "FROM llm.models WHERE name = 'ft_sql'") == \
        ("tiny", "{{content}}", "answer", "Answer with one SQL query and nothing else.", 1)
    assert re.search(r"answer\s+\|\s+version\s+\|\s+completion_tokens", out)
    assert "(1 row)" in out.split("AND max_tokens = :answer_tokens;")[-1]

    # 2. demo data: >= 300 conversations in the long format, a held-out split.
    out = step("02-demo-data.sql")
    assert one(db, "SELECT count(DISTINCT chat_id) FROM demo_data")[0] >= 300
    shapes = db.execute("SELECT string_agg(role, ',' ORDER BY message_id) AS roles, count(*) "
                        "FROM demo_data GROUP BY chat_id").fetchall()
    assert {roles for roles, _ in shapes} == {"system,user,assistant"}
    # Half of the conversations on real-style schemas by default (the measured recipe): only
    # those declare VARCHAR columns, and the mix is even, so the first n_train hold half too.
    real = ("SELECT count(*) FROM demo_data WHERE role = 'user' "
            "AND position('varchar(' IN lower(content)) > 0 {}")
    assert one(db, real.format(""))[0] == N_GENERATE // 2
    assert one(db, real.format(f"AND chat_id <= {N_TRAIN}"))[0] == N_TRAIN // 2
    # A third each in real-style schemas: trained styles, and the style never trained on;
    # the rest simple, their kinds in round-robin.
    n_simple = N_EVAL - 2 * (N_EVAL // 3)
    assert one(db, "SELECT count(*), count(DISTINCT kind) FILTER (WHERE schema_key !~ '/') "
                   "FROM demo_eval") == (N_EVAL, min(5, n_simple))
    assert one(db, "SELECT count(*) FILTER (WHERE schema_key ~ '/documented$'), "
                   "count(*) FILTER (WHERE schema_key ~ '/(compact|orm|annotated)$') "
                   "FROM demo_eval") == (N_EVAL // 3, N_EVAL // 3)
    assert one(db, "SELECT count(*) FROM demo_eval e WHERE EXISTS (SELECT FROM demo_data d "
                   "WHERE d.role = 'user' AND split_part(d.content, E'\\n-- ', 1) = "
                   "split_part(e.content, E'\\n-- ', 1))")[0] == 0, "eval schema seen in training"
    assert re.search(r"held-out questions on \d+ schemas never used in training", out)

    # 3. dry run shows tokens and cost; budget; the job trains and version 2 becomes active.
    out = step("03-finetune.sql")
    dry = re.search(r"conversations \| tokens \| epochs.*\n[-+]+\n\s*(\d+) \|\s*(\d+) \|\s*1 \|"
                    r"\s*(\d+) \|\s*([\d.]+) \|\s*(\w+)", out)
    assert dry, out[:3000]
    assert int(dry.group(1)) == N_TRAIN and int(dry.group(2)) > 0 and float(dry.group(4)) == 0
    budget = one(db, "SELECT max_tokens FROM llm.budgets WHERE target = 'ft_sql'")[0]
    assert budget == int(dry.group(3)) * 6 // 5
    assert re.search(r"NOTICE:\s+job \d+ step 1/\d+: loss", out), "no progress NOTICEs"
    job = one(db, "SELECT id, status, error FROM llm.jobs WHERE model = 'ft_sql' ORDER BY id DESC")
    assert job[1] == "succeeded", job
    assert one(db, "SELECT active_version FROM llm.models WHERE name = 'ft_sql'")[0] == 2
    assert one(db, "SELECT provider_model_id FROM llm.model_versions WHERE model = 'ft_sql' "
                   "AND version = 2")[0].startswith("ft:tiny:")
    assert (out_dir / "loss.png").stat().st_size > 1000, out[-2000:]

    # 4. the new version answers under a max_tokens option; the prompt-engineered model exists.
    out = step("04-query-versions.sql")
    # (a prompt with a schema: ft_sql decodes under that schema's SQL grammar by default)
    version, tokens = one(db, "SELECT version, completion_tokens FROM ft_sql WHERE content = "
                              "'CREATE TABLE t (x INT);' AND max_tokens = 3")
    assert version == 2 and 0 < tokens <= 3
    assert one(db, "SELECT options->>'sql_grammar_from' FROM llm.models "
                   "WHERE name = 'ft_sql'")[0] == "content"
    assert one(db, "SELECT base_model, active_version FROM llm.models "
                   "WHERE name = 'ft_sql_succinct'") == ("tiny", 1)
    assert "{{content}}" in one(db, "SELECT prompt_template FROM llm.models "
                                    "WHERE name = 'ft_sql_succinct'")[0]
    assert out.count("(1 row)") >= 3

    # 5. llm_evaluate: one row per model, stored in llm.evaluations with every answer.
    out = step("05-evaluate.sql")
    rows = db.execute("SELECT model, version, n, execution_match, succinct_rate FROM llm.evaluations "
                      "WHERE run_id = (SELECT max(run_id) FROM llm.evaluations) ORDER BY id").fetchall()
    assert [(m, v, n) for m, v, n, _, _ in rows] == [
        ("ft_sql", 1, EVAL_LIMIT), ("ft_sql_succinct", 1, EVAL_LIMIT), ("ft_sql", 2, EVAL_LIMIT)]
    assert all(0 <= em <= 1 and 0 <= sr <= 1 for _, _, _, em, sr in rows)
    assert one(db, "SELECT count(*) FROM llm.evaluation_items i JOIN llm.evaluations e "
                   "ON e.id = i.evaluation_id WHERE e.name = 'tutorial'")[0] == 3 * EVAL_LIMIT
    assert re.search(r"model\s+\|\s+version\s+\|\s+n\s+\|\s+execution_match", out)
    # The per-style table: simple, a trained real style, the never-trained style, overall.
    assert re.search(r"style\s+\|\s+needs_join\s+\|\s+questions\s+\|\s+base", out), out[-3000:]
    assert (out_dir / "accuracy.png").stat().st_size > 1000, out[-2000:]

    # 6. budget guard: refused with SQLSTATE 53400 before a job exists.
    jobs_before = one(db, "SELECT count(*) FROM llm.jobs")[0]
    out = step("06-budget-guard.sql")
    assert "ERROR:  53400" in out and "HINT:" in out
    assert "Budget guard: the fine-tune was refused (SQLSTATE 53400) and no job was created." in out
    assert one(db, "SELECT count(*) FROM llm.jobs")[0] == jobs_before


def test_a_failing_step_stops_with_its_output(db):
    """Without an engine at that address, step 1's question fails; the runner reports it."""
    variables = {"base_model": "tiny", "engine_url": f"http://127.0.0.1:{free_port()}/v1"}
    env = pg_env(db)
    with pytest.raises(StepFailed) as err:
        run_step(EXAMPLES / "01-engine-and-model.sql", env, variables, echo=False)
    assert err.value.step == "01-engine-and-model.sql"
    assert "ERROR:" in err.value.output


def test_demo_cli_is_registered():
    from pg_llm.cli import build_parser

    from pg_llm_tutorial.cli import _dataset_defaults

    args = build_parser().parse_args(["demo", "--fast", "--keep"])
    assert args.command == "demo" and args.fast and args.keep
    _dataset_defaults(args)
    assert (args.n_train, args.epochs, args.eval_limit) == (300, 3, None)
    # sql-create-context: the recipe measured for it, on its first 100 questions
    args = build_parser().parse_args(["demo", "--dataset", "shared"])
    _dataset_defaults(args)
    assert (args.n_train, args.epochs, args.eval_limit) == (1000, 2, 100)
    args = build_parser().parse_args(["demo", "--dataset", "shared", "--epochs", "3"])
    _dataset_defaults(args)
    assert (args.n_train, args.epochs) == (1000, 3)  # what is given wins

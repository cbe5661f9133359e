"""llm_evaluate on the tutorial's real-style held-out questions (issue 15): every gold query
scores through llm_evaluate's own runner (throwaway schema, read-only role), and the
tutorial's breakdown splits the score by schema style and join need."""

from pg_llm_tutorial.breakdown import format_breakdown, plot_breakdown, read_breakdown
from pg_llm_tutorial.data import eval_rows, load_tables
from pg_llm_tutorial.generator import SYSTEM_PROMPT, generate
from pg_llm_tutorial.realistic import mixed_eval

DATA = "SELECT id, content, gold_sql, setup_sql FROM demo_eval ORDER BY id"


def test_real_style_gold_scores_and_the_breakdown_tells_styles_apart(eval_db, scripted, tmp_path):
    _, simple = generate(n_train=0, n_eval=10, seed=42)
    load_tables(eval_db, [], eval_rows(mixed_eval(simple, 10, 10, seed=42)))
    for name, model in (("perfect", "tuned-model"), ("simple_only", "other-model")):
        eval_db.execute("SELECT llm_create_model(%s, engine => 'fake', model_name => %s, "
                        "prompt_template => '{{content}}', system_prompt => %s)",
                        [name, model, SYSTEM_PROMPT])
    for content, gold, key in eval_db.execute("SELECT content, gold_sql, schema_key FROM demo_eval"):
        scripted.script("tuned-model", content, gold)
        # Right on the simple schemas only: guesses `id` keys elsewhere (a wrong query).
        scripted.script("other-model", content, gold if "/" not in key else "SELECT id FROM nowhere")
    result = {r[0]: r[1:] for r in eval_db.execute(
        "SELECT model, n, execution_match FROM llm_evaluate(ARRAY['perfect', 'simple_only'], %s)",
        [DATA])}
    assert result["perfect"] == (30, 1.0)
    assert abs(result["simple_only"][1] - 10 / 30) < 1e-3
    assert eval_db.execute("SELECT min(n_executable) FROM llm.evaluations").fetchone()[0] == 30

    breakdown = read_breakdown(eval_db)
    style = {(r["entry"], r["part"]): (r["n"], r["execution_match"]) for r in breakdown["style"]}
    assert style[("perfect", "documented")] == (10, 1.0)
    assert style[("simple_only", "simple")] == (10, 1.0)
    assert style[("simple_only", "documented")] == (10, 0.0)
    assert {p for _, p in style} == {"simple", "compact", "orm", "annotated", "documented"}
    joins = {(r["entry"], r["part"]): r["n"] for r in breakdown["join"]}
    assert joins[("perfect", "needs join")] >= 4
    assert {r["part"] for r in breakdown["kind"]} >= {"join3", "subquery", "null"}
    real = {(r["entry"], r["part"]): (r["n"], r["execution_match"]) for r in breakdown["real"]}
    assert real[("perfect", "real-style")] == (20, 1.0)
    assert real[("simple_only", "real-style")] == (20, 0.0)
    assert real[("perfect", "real-style, join")][1] == 1.0
    assert real[("perfect", "real-style, join")][0] == joins[("perfect", "needs join")] - sum(
        1 for (sql,) in eval_db.execute("SELECT gold_sql FROM demo_eval WHERE schema_key NOT LIKE '%/%'")
        if " JOIN " in sql)
    text = format_breakdown(breakdown)
    assert "execution match by style" in text and "documented" in text and "0% of 10" in text
    assert "real-style questions" in text and "0% of 20" in text
    assert plot_breakdown(breakdown, tmp_path / "by_style.png")
    assert (tmp_path / "by_style.png").stat().st_size > 1000

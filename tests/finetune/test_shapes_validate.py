"""Data shapes, validation rules, estimate and budget arithmetic (pure Python, no database)."""

from decimal import Decimal

import pytest

from pg_llm.errors import BudgetExceeded, InvalidData, InvalidParameter
from pg_llm.finetune import estimate, shapes, validate
from pg_llm.finetune.budget import Budget, check_budgets


def long_rows(n, *, system=True):
    rows = []
    for i in range(n):
        if system:
            rows.append({"role": "system", "content": "Answer with SQL."})
        rows.append({"role": "user", "content": f"question {i}"})
        rows.append({"role": "assistant", "content": f"SELECT {i}"})
    return rows


def test_long_without_chat_id_splits_at_system_rows():
    rows = long_rows(3)
    shape = shapes.detect_shape(["role", "content"], {})
    convs = shapes.to_conversations(rows, shape)
    assert [len(c.messages) for c in convs] == [3, 3, 3]
    assert convs[1].as_openai()[1] == {"role": "user", "content": "question 1"}
    assert convs[2].source == "row 7"


def test_long_with_chat_id_groups_and_orders_by_message_id():
    rows = [{"chat_id": 2, "message_id": 2, "role": "assistant", "content": "b2"},
            {"chat_id": 1, "message_id": 2, "role": "assistant", "content": "a2"},
            {"chat_id": 2, "message_id": 1, "role": "user", "content": "b1"},
            {"chat_id": 1, "message_id": 1, "role": "user", "content": "a1"},
            {"chat_id": 1, "message_id": 10, "role": "assistant", "content": "a10"},
            {"chat_id": 1, "message_id": 3, "role": "user", "content": "a3"}]
    shape = shapes.detect_shape(["chat_id", "message_id", "role", "content"], {})
    convs = shapes.to_conversations(rows, shape)
    assert [[m["content"] for m in c.as_openai()] for c in convs] == [
        ["b1", "b2"], ["a1", "a2", "a3", "a10"]]   # numeric order, not text order


def test_wide_default_template_with_context():
    rows = [{"question": "How many?", "context": "CREATE TABLE t (a int)",
             "answer": "SELECT count(*) FROM t"}]
    shape = shapes.detect_shape(["question", "context", "answer"], {"system_prompt": "SQL only"})
    conv = shapes.to_conversations(rows, shape)[0]
    assert conv.as_openai() == [
        {"role": "system", "content": "SQL only"},
        {"role": "user", "content": "CREATE TABLE t (a int)\n-- How many?"},
        {"role": "assistant", "content": "SELECT count(*) FROM t"}]


def test_explicit_mappings():
    rows = [{"speaker": "user", "text": "hi"}, {"speaker": "assistant", "text": "hello"}]
    shape = shapes.detect_shape(["speaker", "text"],
                                {"columns": {"role": "speaker", "content": "text"}})
    assert shapes.to_conversations(rows, shape)[0].as_openai()[1]["content"] == "hello"

    rows = [{"q": "x?", "sql": "SELECT x"}]
    shape = shapes.detect_shape(["q", "sql"], {"user_template": "Q: {{q}}",
                                               "assistant_column": "sql"})
    assert shapes.to_conversations(rows, shape)[0].as_openai() == [
        {"role": "user", "content": "Q: x?"}, {"role": "assistant", "content": "SELECT x"}]


def test_unknown_shape_and_bad_mapping():
    with pytest.raises(InvalidData) as exc:
        shapes.detect_shape(["a", "b"], {})
    assert exc.value.sqlstate == "22000" and "role and content" in exc.value.hint
    with pytest.raises(InvalidParameter, match='column "nope"'):
        shapes.detect_shape(["a"], {"columns": {"role": "a", "content": "nope"}})
    with pytest.raises(InvalidParameter, match="question2"):
        shapes.detect_shape(["question", "answer"], {"user_template": "{{question2}}"})


@pytest.mark.parametrize("rows, message", [
    ([{"role": "user", "content": "q"}, {"role": "user", "content": "q2"}],
     "expected a assistant message here, got user"),
    ([{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}],
     "expected a user message here, got assistant"),
    ([{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
     "ends with a user message"),
    ([{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}], "unknown role 'bot'"),
])
def test_role_order_names_the_row(rows, message):
    shape = shapes.detect_shape(["role", "content"], {})
    convs = shapes.to_conversations(rows, shape)
    with pytest.raises(InvalidData) as exc:
        validate.check_structure(convs, {"min_conversations": 1})
    assert message in str(exc.value) and "row " in str(exc.value)
    assert exc.value.hint


def test_empty_content_names_chat_and_message():
    rows = [{"chat_id": 7, "message_id": 1, "role": "user", "content": "q"},
            {"chat_id": 7, "message_id": 2, "role": "assistant", "content": "   "}]
    shape = shapes.detect_shape(["chat_id", "message_id", "role", "content"], {})
    with pytest.raises(InvalidData, match=r"chat_id=7, message_id=2.*blank content"):
        validate.check_structure(shapes.to_conversations(rows, shape), {"min_conversations": 1})


def test_minimum_conversations_is_configurable():
    convs = shapes.to_conversations(long_rows(4), shapes.detect_shape(["role", "content"], {}))
    with pytest.raises(InvalidData, match="too few conversations: 4, at least 10"):
        validate.check_structure(convs, {})
    validate.check_structure(convs, {"min_conversations": 4})
    with pytest.raises(InvalidParameter):
        validate.check_structure(convs, {"min_conversations": 0})


def test_token_limit_and_estimate():
    convs = shapes.to_conversations(long_rows(2), shapes.detect_shape(["role", "content"], {}))
    assert estimate.count_tokens(convs) == "estimate"
    expected = estimate.estimate_message_tokens(convs[0].as_openai())
    # 3 per conversation + per message 4 + ceil(len/3): 16, 10 and 8 characters
    assert expected == 3 + (4 + 6) + (4 + 4) + (4 + 3)
    assert convs[0].tokens == expected
    with pytest.raises(InvalidData, match="conversation too long at row 1"):
        validate.check_token_limits(convs, {"max_tokens_per_conversation": expected - 1})
    est = estimate.estimate(convs, 3, Decimal("8.00"), "estimate")
    assert est.trained_tokens == 3 * sum(c.tokens for c in convs)
    assert est.usd == (Decimal(est.trained_tokens) * 8 / 10**6).quantize(Decimal("0.000001"))


def test_tokenizer_counts_are_used():
    convs = shapes.to_conversations(long_rows(2), shapes.detect_shape(["role", "content"], {}))
    method = estimate.count_tokens(convs, lambda batch: [len(m) * 100 for m in batch])
    assert method == "tokenizer" and [c.tokens for c in convs] == [300, 300]


def test_budget_refuses_with_estimate_vs_remaining():
    b = Budget("engine", "local", None, 1000, spent_tokens=600)
    check_budgets([b], 400, Decimal(0))
    with pytest.raises(BudgetExceeded) as exc:
        check_budgets([b], 401, Decimal(0))
    assert exc.value.sqlstate == "53400"
    assert "401" in exc.value.detail and "399 remaining" not in exc.value.detail
    assert "400 remaining of 1000" in exc.value.detail and "llm_set_budget" in exc.value.hint
    usd = Budget("model", "m", Decimal("1.00"), None, spent_usd=Decimal("0.25"))
    with pytest.raises(BudgetExceeded, match='model "m"'):
        check_budgets([usd], 0, Decimal("0.76"))

"""{{column}} templates: which columns a template makes, and which templates are refused."""

import pytest

from pg_llm import templates
from pg_llm.errors import InvalidParameter


def test_variables_in_order_of_first_use():
    assert templates.parse_template("Q: {{question}}\nC: {{ context }}\n{{question}}") == [
        "question", "context"]


def test_render_replaces_every_placeholder():
    text = templates.render("Q: {{question}} / {{ context }} / {{question}}",
                            {"question": "why?", "context": "sky"})
    assert text == "Q: why? / sky / why?"


def test_render_keeps_braces_in_values_literal():
    assert templates.render("{{a}}", {"a": "{{b}} and \\1"}) == "{{b}} and \\1"


@pytest.mark.parametrize("template, fragment", [
    ("", "must not be empty"),
    ("{{}}", "empty placeholder"),
    ("{{ }}", "empty placeholder"),
    ("Q: {{content", "unbalanced"),
    ("Q: content}}", "unbalanced"),
    ("{{a {{b}}", "unbalanced"),
    ("{{Content}}", "not a valid column name"),
    ("{{1st}}", "not a valid column name"),
    ("{{max_tokens}}", "reserved column"),
    ("{{model_id}}", "reserved column"),
])
def test_invalid_templates_are_refused_with_a_hint(template, fragment):
    with pytest.raises(InvalidParameter) as err:
        templates.parse_template(template)
    assert fragment in err.value.message
    assert err.value.sqlstate == "22023"
    assert err.value.hint


def test_predict_column_is_reserved_too():
    with pytest.raises(InvalidParameter, match="reserved column"):
        templates.parse_template("{{answer}}", predict="answer")

"""pg_llm's errors read as written: no "plpy.Error:" prefix, no Python traceback."""

import psycopg
import pytest


def error_of(db, sql):
    with pytest.raises(psycopg.Error) as err:
        db.execute(sql)
    return err.value


def test_llm_function_error_has_clean_message_hint_and_context(db):
    err = error_of(db, "SELECT llm_create_model('m', engine => 'nope', model_name => 'x', "
                       "prompt_template => '{{content}}', predict => 'answer')")
    diag = err.diag
    assert diag.sqlstate == "42704"
    assert not diag.message_primary.startswith("plpy.")
    assert "nope" in diag.message_primary
    assert diag.message_hint
    assert "Traceback" not in (diag.context or "")
    assert 'PL/Python function "llm_create_model"' in diag.context


def test_plpgsql_caller_keeps_its_own_context_line(db):
    db.execute("""CREATE FUNCTION make_bad() RETURNS void LANGUAGE plpgsql AS $$
                  BEGIN PERFORM llm_create_model('m', engine => 'nope', model_name => 'x',
                        prompt_template => '{{content}}', predict => 'answer'); END $$""")
    err = error_of(db, "SELECT make_bad()")
    assert not err.diag.message_primary.startswith("plpy.")
    assert "make_bad" in err.diag.context


def test_other_plpython_functions_are_left_alone(db):
    db.execute("CREATE FUNCTION user_fn() RETURNS int LANGUAGE plpython3u AS "
               "$$ plpy.error('mine', sqlstate='22023') $$")
    # Load pg_llm's library in this backend first, so its hook is installed.
    error_of(db, "SELECT llm_create_model('m', engine => 'nope', model_name => 'x', "
                 "prompt_template => '{{content}}', predict => 'answer')")
    err = error_of(db, "SELECT user_fn()")
    assert err.diag.message_primary == "plpy.Error: mine"


@pytest.mark.parametrize("name", ["llm_mine", "_mine"])
def test_user_functions_named_like_pg_llm_ones_are_left_alone(db, name):
    db.execute(f"CREATE FUNCTION {name}() RETURNS int LANGUAGE plpython3u AS "
               "$$ plpy.error('mine', sqlstate='22023', hint='my hint') $$")
    error_of(db, "SELECT llm_create_model('m', engine => 'nope', model_name => 'x', "
                 "prompt_template => '{{content}}', predict => 'answer')")
    err = error_of(db, f"SELECT {name}()")
    assert err.diag.sqlstate == "22023"
    assert err.diag.message_primary == "plpy.Error: mine"
    assert err.diag.message_hint == "my hint"
    assert "Traceback" in err.diag.context


def test_user_function_spi_errors_are_left_alone(db):
    db.execute("CREATE FUNCTION llm_bad_query() RETURNS int LANGUAGE plpython3u AS "
               "$$ plpy.execute('SELEC 1') $$")
    error_of(db, "SELECT llm_create_model('m', engine => 'nope', model_name => 'x', "
                 "prompt_template => '{{content}}', predict => 'answer')")
    err = error_of(db, "SELECT llm_bad_query()")
    assert err.diag.sqlstate == "42601"
    assert err.diag.message_primary.startswith("spiexceptions.SyntaxError: ")


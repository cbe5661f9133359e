"""Both bridges run a join that drops rows before asking the model: the C bridge because
each prompt costs pg_llm.prompt_cost, Multicorn2 because its parameterized path costs each
outer row (docs/multicorn.md). Counted on the recording fake endpoint."""

import pytest

SHAPES = {
    "join": "SELECT b.id, m.answer FROM big b JOIN small s ON s.id = b.id "
            "JOIN ft_sql m ON m.content = b.q ORDER BY b.id",
    "in-subquery": "SELECT b.id, m.answer FROM big b JOIN ft_sql m ON m.content = b.q "
                 "WHERE b.id IN (SELECT id FROM small) ORDER BY b.id",
}


@pytest.mark.parametrize("shape", SHAPES)
def test_only_the_rows_a_join_keeps_are_asked(db, ft_sql, fake, shape):
    db.execute("CREATE TABLE big AS SELECT g AS id, 'question ' || g AS q "
               "FROM generate_series(1, 200) g")
    db.execute("CREATE TABLE small (id int PRIMARY KEY)")
    db.execute("INSERT INTO small VALUES (100), (200)")
    db.execute("ANALYZE big; ANALYZE small")
    assert db.execute(SHAPES[shape]).fetchall() == [(100, "echo:question 100"),
                                                    (200, "echo:question 200")]
    assert sorted(r.body["messages"][-1]["content"] for r in fake.chat_requests()) == [
        "question 100", "question 200"]

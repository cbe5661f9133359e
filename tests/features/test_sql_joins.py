"""Join inference: model option sql_infer_joins_from names the template variable holding the
schema's DDL; an answer that reads a column its FROM table lacks gets the joins the schema's
foreign keys give (pg_llm.sql_joins). Repaired answers are run in PostgreSQL next to the
query they should equal; the option is checked through the scan, as an ordinary role."""

from __future__ import annotations

import psycopg
import pytest

from fake_openai import FakeOpenAI
from features.conftest import API_KEY, BASE, assert_schema_variable_option_is_validated

from pg_llm.sql_joins import infer_joins, read_schema

# The held-out `documented` style of the tutorial: keys named <table>_no, table constraints,
# a comment on every column.
THEATRE = """CREATE TABLE venue (  -- theatres
    venue_no INTEGER NOT NULL,  -- identifies the theatre
    venue_name VARCHAR(80) NOT NULL,  -- name
    city VARCHAR(30) NOT NULL,  -- city
    PRIMARY KEY (venue_no)
);
CREATE TABLE production (  -- shows staged at a theatre
    production_no INTEGER NOT NULL,
    title VARCHAR(80) NOT NULL,
    venue_no INTEGER,  -- the theatre: venue
    genre VARCHAR(30) NOT NULL,
    premiere_date DATE NOT NULL,
    PRIMARY KEY (production_no),
    FOREIGN KEY (venue_no) REFERENCES venue (venue_no)
);
CREATE TABLE ticket_sale (
    ticket_sale_no INTEGER NOT NULL,
    production_no INTEGER,
    price NUMERIC(10,2) NOT NULL CHECK (price >= 0),
    PRIMARY KEY (ticket_sale_no),
    FOREIGN KEY (production_no) REFERENCES production (production_no)
);
-- How many tickets were sold for shows in Madrid?"""
ROWS = """
INSERT INTO venue VALUES (1, 'Teatro Real', 'Madrid'), (2, 'Odeon', 'Oslo'), (3, 'Empty', 'Madrid');
INSERT INTO production VALUES (10, 'Carmen', 1, 'opera', '2024-01-05'),
    (11, 'Cats', 1, 'musical', '2024-02-01'), (12, 'Peer Gynt', 2, 'drama', '2023-05-01');
INSERT INTO ticket_sale VALUES (100, 10, 50), (101, 10, 60), (102, 11, 30), (103, 12, 20),
    (104, 12, 25);"""
# Inline REFERENCES, keys named id (the `orm` and `compact` styles).
FARM = ("CREATE TABLE farm (id INTEGER PRIMARY KEY, farm_name VARCHAR(80), region TEXT);\n"
        "CREATE TABLE parcel (id INTEGER PRIMARY KEY, farm_id INTEGER REFERENCES farm(id), "
        "soil CHAR(1));\n"
        "CREATE TABLE harvest (id INTEGER PRIMARY KEY, parcel_id INTEGER NOT NULL "
        "REFERENCES parcel, yield_tonnes NUMERIC(10,1));")

# (answer as a small model writes it, the query it should become, the query it should equal)
REPAIRS = [
    # a child's rows filtered by their grandparent: two joins, rows kept
    ("SELECT COUNT(*) FROM ticket_sale WHERE city = 'Madrid'",
     "SELECT COUNT(*) FROM ticket_sale JOIN production ON ticket_sale.production_no = "
     "production.production_no JOIN venue ON production.venue_no = venue.venue_no "
     "WHERE venue.city = 'Madrid'",
     "SELECT count(*) FROM ticket_sale t, production p, venue v WHERE t.production_no = "
     "p.production_no AND p.venue_no = v.venue_no AND v.city = 'Madrid'"),
    # parents filtered by their children: the join repeats parents, so DISTINCT
    ("SELECT venue_name FROM venue WHERE genre = 'opera' OR genre = 'musical'",
     "SELECT DISTINCT venue.venue_name FROM venue JOIN production ON production.venue_no = "
     "venue.venue_no WHERE production.genre = 'opera' OR production.genre = 'musical'",
     "SELECT venue_name FROM venue WHERE venue_no IN (SELECT venue_no FROM production "
     "WHERE genre IN ('opera', 'musical'))"),
    # the wrong table: the one that has every column replaces it
    ("SELECT title FROM venue ORDER BY premiere_date ASC LIMIT 2",
     "SELECT title FROM production ORDER BY premiere_date ASC LIMIT 2",
     "SELECT title FROM production ORDER BY premiere_date LIMIT 2"),
    # an aggregate over the child, grouped by the parent's column
    ("SELECT venue_name, SUM(price) FROM ticket_sale GROUP BY venue_name",
     "SELECT venue.venue_name, SUM(ticket_sale.price) FROM ticket_sale JOIN production ON "
     "ticket_sale.production_no = production.production_no JOIN venue ON production.venue_no "
     "= venue.venue_no GROUP BY venue.venue_name",
     "SELECT v.venue_name, sum(t.price) FROM venue v JOIN production p USING (venue_no) "
     "JOIN ticket_sale t USING (production_no) GROUP BY 1"),
]

# Answers that must come back exactly as written.
UNCHANGED = [
    "SELECT price FROM ticket_sale WHERE price > 20",              # already runs
    "SELECT COUNT(*) FROM ticket_sale t WHERE city = 'Madrid'",    # an alias: the model chose
    "SELECT ticket_sale.price FROM ticket_sale WHERE city = 'Madrid'",  # qualified names
    "SELECT venue_name FROM venue WHERE venue_no IN (SELECT venue_no FROM production)",
    "SELECT venue_name FROM venue JOIN production ON production.genre = venue.city",
    "SELECT nickname FROM venue",                                  # no table has it
    'SELECT "title" FROM venue',                                   # quoted names
    "SELECT title FROM venue, production",                         # a FROM list
    "UPDATE venue SET city = 'x'",                                 # not a query
    "SELECT 1",
    "WITH t AS (SELECT 1) SELECT city FROM production",           # not one plain SELECT
    "Here it is: SELECT city FROM production",                    # prose first
    "",
]


@pytest.fixture
def theatre(db):
    db.execute("CREATE SCHEMA theatre")
    db.execute("SET search_path = theatre")
    db.execute(THEATRE)
    db.execute(ROWS)
    yield db
    db.execute("SET search_path = public")


def rows(db, sql):
    return sorted(db.execute(sql).fetchall())


@pytest.mark.parametrize("answer,repaired,equal_to", REPAIRS)
def test_a_missing_join_is_inferred_and_the_query_runs(theatre, answer, repaired, equal_to):
    with pytest.raises(psycopg.errors.UndefinedColumn):
        theatre.execute(answer)  # what the model wrote cannot run
    assert infer_joins(answer, THEATRE) == repaired
    assert rows(theatre, repaired) == rows(theatre, equal_to)


@pytest.mark.parametrize("answer", UNCHANGED)
def test_what_it_does_not_repair_is_left_as_written(answer):
    assert infer_joins(answer, THEATRE) == answer


def test_foreign_keys_of_every_layout():
    theatre = read_schema(THEATRE)
    assert theatre.columns["venue"] == ["venue_no", "venue_name", "city"]
    assert sorted(theatre.foreign_keys) == [
        ("production", "venue_no", "venue", "venue_no"),
        ("ticket_sale", "production_no", "production", "production_no")]
    # inline REFERENCES, with and without the parent's column (then its primary key)
    farm = read_schema(FARM)
    assert sorted(farm.foreign_keys) == [("harvest", "parcel_id", "parcel", "id"),
                                         ("parcel", "farm_id", "farm", "id")]
    assert infer_joins("SELECT SUM(yield_tonnes) FROM harvest WHERE region = 'Bavaria'", FARM) == (
        "SELECT SUM(harvest.yield_tonnes) FROM harvest JOIN parcel ON harvest.parcel_id = "
        "parcel.id JOIN farm ON parcel.farm_id = farm.id WHERE farm.region = 'Bavaria'")
    # a column two tables have is taken from the nearest one
    assert infer_joins("SELECT farm_name FROM farm WHERE soil = 'L'", FARM) == (
        "SELECT DISTINCT farm.farm_name FROM farm JOIN parcel ON parcel.farm_id = farm.id "
        "WHERE parcel.soil = 'L'")


def test_the_tutorials_join_questions_are_restored_from_their_one_table_form(db):
    """Every join question of the tutorial's real-style held-out splits, written the way the
    small model writes them (one table, bare columns), comes back as a query with the gold
    query's rows in most cases; none that ran before is broken."""
    from pg_llm_tutorial.realistic import realistic_examples

    examples = [e for split in ("eval", "eval_style") for e in realistic_examples(split, 60, 42)
                if " JOIN " in e.gold_sql]
    restored = 0
    for n, example in enumerate(examples):
        db.execute(f"CREATE SCHEMA j{n}")
        db.execute(f"SET search_path = j{n}")
        db.execute(example.setup_sql)
        gold = rows(db, example.gold_sql)
        one_table = _one_table_form(example.gold_sql)
        repaired = infer_joins(one_table, example.content)
        assert repaired != one_table, one_table
        try:
            restored += rows(db, repaired) == gold
        except psycopg.Error:
            pass
        db.execute("SET search_path = public")
    assert len(examples) >= 20 and restored >= len(examples) * 0.6, (restored, len(examples))


def _one_table_form(sql: str) -> str:
    """`SELECT DISTINCT a.x FROM a JOIN b ON ... WHERE b.y = 1` -> `SELECT x FROM a WHERE y = 1`."""
    import re

    head, rest = sql.split(" FROM ", 1)
    table = rest.split()[0]
    tail = re.split(r"\b(WHERE|GROUP BY|ORDER BY)\b", rest, maxsplit=1)
    clause = "".join(tail[1:]) if len(tail) > 1 else ""
    text = f"{head.replace('DISTINCT ', '')} FROM {table} {clause}".strip()
    return re.sub(r"\b\w+\.(\w+)", r"\1", text)


# ---- through PostgreSQL: the option, the scan, an ordinary role -----------------------------

BROKEN = "SELECT COUNT(*) FROM ticket_sale WHERE city = 'Madrid'"


@pytest.fixture
def hosted(db):
    """Any provider: the repair is the backend's, after the answer comes back."""
    with FakeOpenAI(models=[BASE], api_key=API_KEY, answer=lambda messages, body: BROKEN) as fake:
        db.execute("SELECT llm_create_engine('hosted', base_url => %s, api_key => %s, "
                   "options => '{\"max_retries\": 0}')", (fake.url, API_KEY))
        db.execute("SELECT llm_create_model('sqlgen', 'hosted', %s, '{{ddl}}\n-- {{question}}', "
                   "options => '{\"sql_infer_joins_from\": \"ddl\", \"temperature\": 0, "
                   "\"cache\": \"on\"}')", (BASE,))
        yield fake


def test_the_scan_returns_the_repaired_answer_as_an_ordinary_role(db, hosted):
    role = "joins_reader"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f"GRANT USAGE ON FOREIGN SERVER hosted TO {role}")
    db.execute(f"GRANT SELECT ON sqlgen TO {role}")
    info = db.info
    with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=role,
                         autocommit=True) as conn:
        answer = conn.execute("SELECT answer FROM sqlgen WHERE ddl = %s AND question = 'x'",
                              (THEATRE,)).fetchone()[0]
        assert answer == infer_joins(BROKEN, THEATRE) != BROKEN
        # a DDL without the tables: left as the model wrote it
        other = conn.execute("SELECT answer FROM sqlgen WHERE ddl = 'CREATE TABLE t (a int);' "
                             "AND question = 'x'").fetchone()[0]
        assert other == BROKEN
    # The cache keeps what the engine said; the repair is applied on every read.
    assert db.execute("SELECT count(*) FROM llm.cache WHERE answer = %s",
                      (BROKEN,)).fetchone()[0] == 2
    db.execute("""SELECT llm_alter_model('sqlgen', '{"sql_infer_joins_from": null}')""")
    raw = db.execute("SELECT answer, cached FROM sqlgen WHERE ddl = %s AND question = 'x'",
                     (THEATRE,)).fetchone()
    assert raw == (BROKEN, True)
    assert len(hosted.chat_requests()) == 2
    db.execute(f"DROP OWNED BY {role}")
    db.execute(f"DROP ROLE {role}")


def test_the_option_is_validated(db, hosted):
    assert_schema_variable_option_is_validated(db, "sql_infer_joins_from", engine="hosted", model="sqlgen")

"""The tutorial's database schemas and the synthetic rows that fill them.

Every schema follows the same conventions, because a 135M model generalises to unseen
schemas only when the SQL it learns is regular: each table has `id INT PRIMARY KEY`, a
label column (name/title) whose values are unique, foreign keys are `<singular>_id`
referencing `<parent>(id)`, and numeric/date values are unique per column so ORDER BY ...
LIMIT never has ties. TRAIN_SCHEMAS and EVAL_SCHEMAS share no table set, so evaluation
always runs on schemas the fine-tune never saw.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta


class ColumnsByKind:
    """A table's columns by kind (Table here, RTable in realistic_schemas)."""

    def of_kind(self, *kinds: str) -> list:
        return [c for c in self.columns if c.kind in kinds]

    @property
    def label(self):
        return self.of_kind("label")[0]


class TablesByName:
    """A schema's tables by name, its foreign keys (Schema here, Domain in realistic_schemas)."""

    def table(self, name: str):
        return next(t for t in self.tables if t.name == name)

    def foreign_keys(self) -> list[tuple]:
        """(child, fk column, parent) for every foreign key."""
        return [(t, c, self.table(c.references)) for t in self.tables for c in t.of_kind("fk")]


@dataclass(frozen=True)
class Column:
    name: str
    kind: str                   # key | label | category | number | date | fk
    sql_type: str = "TEXT"
    pool: tuple = ()            # label/category values
    low: float = 0              # number/date range (dates: year numbers)
    high: float = 0
    decimals: int = 0
    references: str = ""        # fk: parent table name
    phrases: tuple = ()         # category: "from {v}"; number/date: ("over {v}", "under {v}")

    @property
    def words(self) -> str:
        """How a question names the column: `signup_year` -> "signup year"."""
        return self.name.replace("_", " ")

    def ddl(self) -> str:
        if self.kind == "key":
            return f"{self.name} INT PRIMARY KEY"
        if self.kind == "fk":
            return f"{self.name} INT REFERENCES {self.references}(id)"
        return f"{self.name} {self.sql_type}"


@dataclass(frozen=True)
class Table(ColumnsByKind):
    name: str                   # plural noun: customers
    singular: str               # customer
    columns: tuple
    rows: int = 12

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def ddl(self) -> str:
        return f"CREATE TABLE {self.name} ({', '.join(c.ddl() for c in self.columns)});"


@dataclass(frozen=True)
class Schema(TablesByName):
    key: str
    tables: tuple

    def ddl(self) -> str:
        return "\n".join(t.ddl() for t in self.tables)

    def link_tables(self) -> list[Table]:
        """Tables with two foreign keys: the middle of a 3-table join."""
        return [t for t in self.tables if len(t.of_kind("fk")) >= 2]


# --- building blocks ------------------------------------------------------------------

FIRST = ("Alice", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia",
         "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
         "Umar", "Vera", "Wei", "Yuki", "Zara")
LAST = ("Smith", "Garcia", "Muller", "Rossi", "Kim", "Novak", "Silva", "Khan", "Dubois",
        "Jensen", "Okafor", "Tanaka", "Lopez", "Ivanova", "Brown", "Haddad")
PEOPLE = tuple(f"{f} {l}" for l in LAST for f in FIRST)
COUNTRIES = ("Canada", "France", "Germany", "Japan", "Brazil", "India", "Italy", "Mexico")
CITIES = ("Toronto", "Paris", "Berlin", "Tokyo", "Madrid", "Chicago", "Lima", "Oslo", "Dublin")


def key() -> Column:
    return Column("id", "key", "INT")


def label(name: str, pool: tuple) -> Column:
    return Column(name, "label", "TEXT", pool=pool)


def category(name: str, pool: tuple, *phrases: str) -> Column:
    return Column(name, "category", "TEXT", pool=pool, phrases=phrases)


def number(name: str, low: float, high: float, *, decimals: int = 0,
           phrases: tuple = ()) -> Column:
    sql_type = "INT" if decimals == 0 else f"NUMERIC(12,{decimals})"
    return Column(name, "number", sql_type, low=low, high=high, decimals=decimals,
                  phrases=phrases)


def day(name: str, first_year: int, last_year: int, *phrases: str) -> Column:
    return Column(name, "date", "DATE", low=first_year, high=last_year, phrases=phrases)


def fk(name: str, parent: str) -> Column:
    return Column(name, "fk", "INT", references=parent)


def titles(*words: tuple) -> tuple:
    """Cartesian product of word lists: a pool of distinct, plausible titles."""
    out = [""]
    for group in words:
        out = [f"{a} {b}".strip() for a in out for b in group]
    return tuple(out)


# --- training schemas -----------------------------------------------------------------

TRAIN_SCHEMAS = (
    Schema("shop", (
        Table("customers", "customer", (key(), label("name", PEOPLE),
              category("country", COUNTRIES, "from {v}", "based in {v}", "whose country is {v}"),
              category("city", CITIES, "living in {v}", "in the city of {v}"),
              number("signup_year", 2015, 2024)), rows=14),
        Table("orders", "order", (key(), fk("customer_id", "customers"),
              day("order_date", 2022, 2024, "placed after {v}", "placed before {v}"),
              number("amount", 5, 900, decimals=2),
              category("status", ("shipped", "pending", "cancelled", "delivered"),
                       "with status {v}", "that are {v}")), rows=24),
    )),
    Schema("company", (
        Table("departments", "department", (key(), label("name", (
              "Engineering", "Sales", "Marketing", "Finance", "Legal", "Support", "Research",
              "Operations")), category("location", CITIES, "located in {v}", "in {v}"),
              number("budget", 50000, 900000)), rows=8),
        Table("employees", "employee", (key(), label("name", PEOPLE), fk("department_id", "departments"),
              category("job_title", ("Engineer", "Manager", "Analyst", "Designer", "Clerk"),
                       "working as {v}", "whose job title is {v}"),
              number("salary", 30000, 150000, phrases=("earning more than {v}", "earning less than {v}")),
              day("hire_date", 2010, 2024, "hired after {v}", "hired before {v}")), rows=20),
    )),
    Schema("inventory", (
        Table("suppliers", "supplier", (key(), label("name", titles(
              ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne"), ("Supplies", "Trading"))),
              category("country", COUNTRIES, "from {v}", "based in {v}")), rows=8),
        Table("products", "product", (key(), label("name", titles(
              ("Red", "Blue", "Steel", "Oak", "Smart", "Mini"), ("Lamp", "Chair", "Kettle", "Desk", "Phone"))),
              category("category", ("furniture", "kitchen", "electronics", "garden"),
                       "in the {v} category", "of category {v}"),
              number("price", 3, 600, decimals=2), number("stock", 0, 500),
              fk("supplier_id", "suppliers")), rows=20),
    )),
    Schema("school", (
        Table("students", "student", (key(), label("name", PEOPLE),
              category("major", ("Biology", "History", "Physics", "Economics", "Art"),
                       "majoring in {v}", "whose major is {v}"),
              number("enrollment_year", 2016, 2024)), rows=14),
        Table("courses", "course", (key(), label("title", (
              "Databases", "Algebra", "Genetics", "Poetry", "Statistics", "Ethics", "Robotics",
              "Painting")), number("credits", 1, 10)), rows=8),
        Table("enrollments", "enrollment", (key(), fk("student_id", "students"),
              fk("course_id", "courses"), number("grade", 40, 100)), rows=26),
    )),
    Schema("airline", (
        Table("airlines", "airline", (key(), label("name", titles(
              ("North", "Sky", "Blue", "Sun", "Polar", "Coral"), ("Air", "Wings"))),
              category("country", COUNTRIES, "from {v}", "based in {v}")), rows=8),
        Table("flights", "flight", (key(), fk("airline_id", "airlines"),
              category("origin", CITIES, "departing from {v}", "leaving {v}"),
              category("destination", CITIES, "going to {v}", "flying to {v}"),
              number("distance", 200, 9000),
              day("departure_date", 2024, 2024, "departing after {v}", "departing before {v}")), rows=24),
    )),
    Schema("books", (
        Table("authors", "author", (key(), label("name", PEOPLE),
              category("nationality", ("Irish", "Chilean", "Nigerian", "Korean", "Polish"),
                       "whose nationality is {v}", "with {v} nationality"),
              number("birth_year", 1920, 1995)), rows=10),
        Table("books", "book", (key(), label("title", titles(
              ("The Silent", "A Distant", "The Last", "Hidden", "Broken"), ("River", "Garden", "Empire", "Winter", "Letter"))),
              fk("author_id", "authors"),
              category("genre", ("mystery", "fantasy", "romance", "history"), "in the {v} genre", "of genre {v}"),
              number("pages", 90, 900), number("published_year", 1950, 2023)), rows=20),
    )),
    Schema("clinic", (
        Table("doctors", "doctor", (key(), label("name", PEOPLE),
              category("specialty", ("cardiology", "pediatrics", "neurology", "dermatology"),
                       "specialising in {v}", "whose specialty is {v}")), rows=8),
        Table("patients", "patient", (key(), label("name", PEOPLE),
              category("city", CITIES, "living in {v}", "from {v}"), number("birth_year", 1940, 2015)), rows=14),
        Table("visits", "visit", (key(), fk("patient_id", "patients"), fk("doctor_id", "doctors"),
              day("visit_date", 2023, 2024, "after {v}", "before {v}"),
              number("cost", 20, 800, decimals=2)), rows=26),
    )),
    Schema("cinema", (
        Table("directors", "director", (key(), label("name", PEOPLE),
              category("country", COUNTRIES, "from {v}", "born in {v}")), rows=8),
        Table("movies", "movie", (key(), label("title", titles(
              ("Night", "Iron", "Golden", "Lost", "Wild"), ("Harbor", "Storm", "Kingdom", "Road", "Signal"))),
              fk("director_id", "directors"),
              category("genre", ("drama", "comedy", "thriller", "animation"), "in the {v} genre", "of genre {v}"),
              number("release_year", 1980, 2024), number("rating", 1, 10, decimals=1),
              number("box_office", 1000000, 900000000)), rows=20),
    )),
    Schema("sports", (
        Table("teams", "team", (key(), label("name", titles(
              ("River", "Mountain", "City", "Harbor", "Forest"), ("Lions", "Eagles", "Rovers"))),
              category("city", CITIES, "from {v}", "based in {v}"), number("founded_year", 1880, 2010)), rows=8),
        Table("players", "player", (key(), label("name", PEOPLE), fk("team_id", "teams"),
              category("position", ("goalkeeper", "defender", "midfielder", "forward"),
                       "playing as {v}", "whose position is {v}"),
              number("age", 17, 39), number("goals", 0, 60)), rows=22),
    )),
    Schema("music", (
        Table("artists", "artist", (key(), label("name", titles(
              ("The", "Velvet", "Neon", "Static", "Lunar"), ("Echoes", "Tides", "Foxes", "Owls"))),
              category("country", COUNTRIES, "from {v}", "based in {v}"),
              category("genre", ("rock", "jazz", "pop", "folk"), "playing {v}", "in the {v} genre")), rows=8),
        Table("albums", "album", (key(), label("title", titles(
              ("Blue", "Electric", "Quiet", "Paper", "Golden"), ("Hours", "Skies", "Streets", "Dreams"))),
              fk("artist_id", "artists"), number("release_year", 1965, 2024), number("sales", 1000, 5000000)), rows=18),
    )),
    Schema("hotels", (
        Table("hotels", "hotel", (key(), label("name", titles(
              ("Grand", "Royal", "Harbor", "Garden", "Plaza"), ("Hotel", "Inn", "Suites"))),
              category("city", CITIES, "in {v}", "located in {v}"), number("stars", 1, 5)), rows=8),
        Table("guests", "guest", (key(), label("name", PEOPLE),
              category("country", COUNTRIES, "from {v}", "whose country is {v}")), rows=12),
        Table("bookings", "booking", (key(), fk("hotel_id", "hotels"), fk("guest_id", "guests"),
              number("nights", 1, 30), day("check_in", 2024, 2024, "checking in after {v}", "checking in before {v}")), rows=24),
    )),
    Schema("cars", (
        Table("dealers", "dealer", (key(), label("name", titles(
              ("Prime", "Metro", "Valley", "Summit"), ("Motors", "Autos"))),
              category("city", CITIES, "in {v}", "located in {v}")), rows=8),
        Table("cars", "car", (key(), label("model", titles(
              ("Astra", "Corsa", "Civic", "Golf", "Model", "Fiesta"), ("S", "X", "GT", "Sport"))),
              category("brand", ("Opel", "Honda", "Volkswagen", "Tesla", "Ford"), "made by {v}", "of brand {v}"),
              number("year", 2005, 2024), number("price", 4000, 90000), fk("dealer_id", "dealers")), rows=20),
    )),
    Schema("restaurants", (
        Table("restaurants", "restaurant", (key(), label("name", titles(
              ("Casa", "Chez", "Little", "Golden"), ("Luna", "Marie", "Dragon", "Olive", "Tandoor"))),
              category("cuisine", ("Italian", "French", "Chinese", "Indian", "Mexican"),
                       "serving {v} food", "with {v} cuisine"),
              category("city", CITIES, "in {v}", "located in {v}"), number("rating", 1, 5, decimals=1)), rows=10),
        Table("reviews", "review", (key(), fk("restaurant_id", "restaurants"), label("reviewer", PEOPLE),
              number("score", 1, 100), day("review_date", 2023, 2024, "written after {v}", "written before {v}")), rows=24),
    )),
    Schema("geography", (
        Table("cities", "city", (key(), label("name", titles(
              ("Port", "New", "San", "Lake", "Fort"), ("Haven", "Vale", "Rock", "Bay", "Field"))),
              category("country", COUNTRIES, "in {v}", "located in {v}"),
              number("population", 10000, 9000000), number("area", 20, 3000, decimals=1)), rows=18),
    )),
)

# --- evaluation schemas (never used in training) ---------------------------------------

EVAL_SCHEMAS = (
    Schema("library", (
        Table("members", "member", (key(), label("name", PEOPLE),
              category("city", CITIES, "living in {v}", "from {v}"), number("join_year", 2010, 2024)), rows=12),
        Table("loans", "loan", (key(), fk("member_id", "members"), label("book_title", titles(
              ("Dark", "Bright", "Lonely", "Secret"), ("Island", "Forest", "Mirror", "Tower", "Valley"))),
              day("loan_date", 2024, 2024, "borrowed after {v}", "borrowed before {v}"),
              number("days", 1, 60)), rows=20),
    )),
    Schema("retail", (
        Table("stores", "store", (key(), label("name", titles(
              ("Central", "East", "West", "North", "Harbor"), ("Market", "Outlet"))),
              category("region", ("north", "south", "east", "west"), "in the {v} region", "whose region is {v}"),
              number("opened_year", 1990, 2023)), rows=8),
        Table("sales", "sale", (key(), fk("store_id", "stores"),
              category("product", ("coffee", "tea", "bread", "cheese", "juice"), "of {v}", "selling {v}"),
              number("quantity", 1, 300), number("revenue", 10, 5000, decimals=2),
              day("sale_date", 2024, 2024, "made after {v}", "made before {v}")), rows=26),
    )),
    Schema("schools", (
        Table("schools", "school", (key(), label("name", titles(
              ("Lincoln", "Maple", "Riverside", "Hillcrest", "Oakwood"), ("High", "Academy"))),
              category("district", ("Downtown", "Uptown", "Lakeside", "Westend"), "in the {v} district", "in {v}"),
              number("founded_year", 1900, 2015)), rows=8),
        Table("teachers", "teacher", (key(), label("name", PEOPLE), fk("school_id", "schools"),
              category("subject", ("Math", "Chemistry", "English", "Music", "Geography"),
                       "teaching {v}", "whose subject is {v}"),
              number("salary", 28000, 95000), number("years_experience", 0, 40)), rows=22),
    )),
    Schema("kitchen", (
        Table("chefs", "chef", (key(), label("name", PEOPLE),
              category("country", COUNTRIES, "from {v}", "based in {v}")), rows=8),
        Table("recipes", "recipe", (
              key(),
              label("title", titles(("Spicy", "Creamy", "Smoked", "Fresh", "Crispy"),
                                    ("Soup", "Salad", "Curry", "Tart", "Noodles"))),
              fk("chef_id", "chefs"),
              category("cuisine", ("Thai", "Greek", "Peruvian", "Korean"), "with {v} cuisine",
                       "from the {v} kitchen"),
              number("calories", 120, 1400),
              number("prep_minutes", 5, 180)), rows=20),
    )),
    Schema("events", (
        Table("events", "event", (key(), label("title", titles(
              ("Data", "Cloud", "Design", "Health", "Energy"), ("Summit", "Forum", "Expo"))),
              category("city", CITIES, "held in {v}", "in {v}"), number("capacity", 50, 5000)), rows=8),
        Table("attendees", "attendee", (key(), label("name", PEOPLE),
              category("company", ("Acme", "Globex", "Initech", "Hooli", "Vandelay"), "working at {v}", "from {v}")), rows=14),
        Table("registrations", "registration", (key(), fk("event_id", "events"), fk("attendee_id", "attendees"),
              number("ticket_price", 0, 900, decimals=2)), rows=26),
    )),
    Schema("shipping", (
        Table("warehouses", "warehouse", (key(), label("name", titles(
              ("Alpha", "Beta", "Delta", "Gamma", "Omega"), ("Depot", "Hub"))),
              category("city", CITIES, "in {v}", "located in {v}"), number("capacity", 1000, 90000)), rows=8),
        Table("shipments", "shipment", (key(), fk("warehouse_id", "warehouses"),
              category("destination", COUNTRIES, "going to {v}", "shipped to {v}"),
              number("weight", 1, 2000, decimals=1),
              category("status", ("in transit", "delivered", "delayed"), "with status {v}", "that are {v}"),
              day("ship_date", 2024, 2024, "shipped after {v}", "shipped before {v}")), rows=24),
    )),
)


# --- synthetic rows ---------------------------------------------------------------------

Database = dict  # table name -> list of row dicts, in insertion order


def _unique_numbers(col: Column, n: int, rng: random.Random) -> list:
    scale = 10 ** col.decimals
    lo, hi = int(col.low * scale), int(col.high * scale)
    picks = rng.sample(range(lo, hi + 1), min(n, hi - lo + 1))
    while len(picks) < n:  # tiny ranges (stars 1-5): repeats are unavoidable
        picks.append(rng.randint(lo, hi))
    return [p if col.decimals == 0 else round(p / scale, col.decimals) for p in picks]


def _unique_days(col: Column, n: int, rng: random.Random) -> list:
    first = date(int(col.low), 1, 1)
    span = (date(int(col.high), 12, 31) - first).days
    return [first + timedelta(days=d) for d in rng.sample(range(span + 1), n)]


def populate(schema: Schema, seed: int) -> Database:
    """Deterministic rows for a schema; every parent row has at least one child row, so
    joins filtered on any parent value return rows."""
    rng = random.Random(f"{seed}:{schema.key}")
    db: Database = {}
    for table in schema.tables:
        n = table.rows
        cols = {}
        for col in table.columns:
            if col.kind == "key":
                cols[col.name] = list(range(1, n + 1))
            elif col.kind == "label":
                cols[col.name] = rng.sample(col.pool, n)
            elif col.kind == "category":
                # Cover several categories but keep some repeated, so GROUP BY/HAVING mean something.
                pool = list(col.pool)
                cols[col.name] = [pool[i % len(pool)] if i < len(pool) else rng.choice(pool)
                                  for i in range(n)]
                rng.shuffle(cols[col.name])
            elif col.kind == "number":
                cols[col.name] = _unique_numbers(col, n, rng)
            elif col.kind == "date":
                cols[col.name] = _unique_days(col, n, rng)
            elif col.kind == "fk":
                parent_ids = [r["id"] for r in db[col.references]]
                ids = parent_ids + [rng.choice(parent_ids) for _ in range(n - len(parent_ids))]
                rng.shuffle(ids)
                cols[col.name] = ids[:n]
        db[table.name] = [{c: cols[c][i] for c in cols} for i in range(n)]
        _dedupe_link_pairs(table, db[table.name])
    return db


def _dedupe_link_pairs(table: Table, rows: list) -> None:
    """A link table holds each (a, b) pair once, so 3-table joins return no duplicates."""
    fks = [c.name for c in table.of_kind("fk")]
    if len(fks) < 2:
        return
    seen, keep = set(), []
    for row in rows:
        pair = (row[fks[0]], row[fks[1]])
        if pair not in seen:
            seen.add(pair)
            keep.append(row)
    rows[:] = keep


def sql_literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def setup_sql(schema: Schema, db: Database) -> str:
    """CREATE TABLE + INSERT statements (unqualified names) that build the database."""
    parts = []
    for table in schema.tables:
        parts.append(table.ddl())
        names = [c.name for c in table.columns]
        values = ",\n  ".join("(" + ", ".join(sql_literal(row[n]) for n in names) + ")"
                              for row in db[table.name])
        parts.append(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES\n  {values};")
    return "\n".join(parts)

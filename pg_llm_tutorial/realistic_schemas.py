"""Schemas written the way production databases are (issue 15): 3-6 tables per domain, keys
named `id`, `<table>_id`, `<table>_no` or a natural `code`, NUMERIC/DATE/TIMESTAMP columns,
NOT NULL, CHECK and DEFAULT clauses, `-- comments` that explain codes and units, nullable
columns, and table names that differ from the nouns a question uses ("patients" -> `person`).

A Domain holds the logical tables and their rows; a Style decides how they are written: the
DDL layout, the key names, the comment density and the constraints. The same rows rendered
in two styles give two databases whose key columns have different names, so setup_sql and
gold SQL are always built for one (domain, style) pair.

TRAIN_DOMAINS and HELDOUT_DOMAINS share no table; TRAIN_STYLES and HELDOUT_STYLE share no key
suffix, and only HELDOUT_STYLE comments every column. Pure standard library, deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from .schemas import (PEOPLE, CITIES, COUNTRIES, ColumnsByKind, TablesByName, sql_literal,
                      titles)


@dataclass(frozen=True)
class RCol:
    name: str                   # physical name (key/fk columns: decided by the style)
    kind: str                   # label | category | number | date | timestamp | fk
    sql_type: str = "TEXT"
    words: str = ""             # how a question names it; default: name with spaces
    pool: tuple = ()            # label/category values; codes: (code, meaning) pairs
    low: float = 0
    high: float = 0
    decimals: int = 0
    references: str = ""        # fk: parent table name
    comment: str = ""           # unit or meaning of codes
    nullable: bool = False      # some rows hold NULL (questions about missing values)
    check: str = ""             # CHECK condition, {c} = the column
    default: str = ""

    @property
    def phrase(self) -> str:
        return self.words or self.name.replace("_", " ")

    @property
    def coded(self) -> bool:
        return bool(self.pool) and isinstance(self.pool[0], tuple)

    def values(self) -> tuple:
        return tuple(code for code, _ in self.pool) if self.coded else self.pool

    def meaning(self, value) -> str:
        return dict(self.pool)[value] if self.coded else str(value)


@dataclass(frozen=True)
class RTable(ColumnsByKind):
    name: str                   # physical name: person, invoice_lines
    noun: str                   # plural noun in questions: patients
    singular: str               # patient
    columns: tuple
    rows: int = 12
    stem: str = ""              # key name stem (invoice_lines -> invoice_line); default name
    natural_key: tuple = ()     # (column, sql type, pool): a text code as primary key
    comment: str = ""           # what a row is, in the words of the questions

    @property
    def key_stem(self) -> str:
        return self.stem or self.name

    def fk_to(self, parent: str) -> RCol | None:
        return next((c for c in self.of_kind("fk") if c.references == parent), None)


@dataclass(frozen=True)
class Domain(TablesByName):
    key: str
    tables: tuple


@dataclass(frozen=True)
class Style:
    name: str
    layout: str                 # oneline | multiline | table_constraints
    key_suffix: str             # "" -> `id` (fks `<parent>_id`); "_id"/"_no" -> `<stem><suffix>`
    comments: str               # none | some (codes, units, synonyms) | every (every column)
    constraints: bool           # NOT NULL / CHECK / DEFAULT clauses
    lower_types: bool = False   # `integer`, `numeric(10,2)` as ORMs print them
    extra_timestamps: bool = False  # created_at/updated_at columns on every table

    def key_name(self, table: RTable) -> str:
        if table.natural_key:
            return table.natural_key[0]
        return "id" if not self.key_suffix else f"{table.key_stem}{self.key_suffix}"

    def fk_name(self, parent: RTable) -> str:
        if parent.natural_key:
            return f"{parent.key_stem}_{parent.natural_key[0]}"
        return f"{parent.key_stem}_id" if not self.key_suffix else self.key_name(parent)


# The training data is written in these three styles; HELDOUT_STYLE never appears in it.
TRAIN_STYLES = (
    Style("compact", "oneline", "", "none", False),
    Style("orm", "multiline", "", "none", True, lower_types=True, extra_timestamps=True),
    Style("annotated", "multiline", "_id", "some", True),
)
HELDOUT_STYLE = Style("documented", "table_constraints", "_no", "every", True)
STYLES = {s.name: s for s in TRAIN_STYLES + (HELDOUT_STYLE,)}


# --- column helpers -----------------------------------------------------------------------

def label(name, pool, sql_type="VARCHAR(80)", words="", comment=""):
    return RCol(name, "label", sql_type, words=words, pool=pool, comment=comment)


def category(name, pool, sql_type="VARCHAR(30)", words="", comment="", nullable=False):
    return RCol(name, "category", sql_type, words=words, pool=pool, comment=comment,
                nullable=nullable)


def codes(name, pairs, words="", comment=""):
    """A one/two-letter code column; the comment says what each code means."""
    width = max(len(c) for c, _ in pairs)
    listed = ", ".join(f"{c} = {m}" for c, m in pairs)
    return RCol(name, "category", f"CHAR({width})", words=words, pool=pairs,
                comment=(comment + ": " if comment else "") + listed,
                check="{c} IN (" + ", ".join(f"'{c}'" for c, _ in pairs) + ")",
                default=f"'{pairs[0][0]}'")


def number(name, low, high, decimals=0, words="", comment="", nullable=False, positive=True):
    sql_type = "INTEGER" if decimals == 0 else f"NUMERIC({10 if high < 1e7 else 14},{decimals})"
    return RCol(name, "number", sql_type, words=words, low=low, high=high, decimals=decimals,
                comment=comment, nullable=nullable, check="{c} >= 0" if positive else "")


def day(name, first_year, last_year, words="", comment="", nullable=False):
    return RCol(name, "date", "DATE", words=words, low=first_year, high=last_year,
                comment=comment, nullable=nullable)


def moment(name, first_year, last_year, words="", comment="", nullable=False):
    return RCol(name, "timestamp", "TIMESTAMP", words=words, low=first_year, high=last_year,
                comment=comment, nullable=nullable)


def fk(parent, words=""):
    return RCol("", "fk", "INTEGER", words=words, references=parent)


WARDS = titles(("North", "South", "East", "West", "Garden", "River"), ("Wing", "Ward"))
SHIPS = titles(("Nordic", "Atlantic", "Baltic", "Coral", "Polar", "Amber"), ("Star", "Spirit", "Queen", "Trader"))
PORTS = ("Rotterdam", "Hamburg", "Antwerp", "Valencia", "Gdansk", "Piraeus", "Genoa", "Le Havre", "Bergen")
FLAGS = ("Panama", "Liberia", "Malta", "Norway", "Greece")
PRODUCTS = titles(("Steel", "Copper", "Oak", "Smart", "Compact", "Solar"), ("Valve", "Pump", "Panel", "Sensor", "Cable"))
CLIENTS = titles(("Apex", "Blue", "Nova", "Orbit", "Pioneer", "Vertex"), ("Logistics", "Foods", "Systems", "Labs"))
UNITS = ("Platform", "Payments", "Data", "Mobile", "Security", "Research", "Finance", "Support")
PROJECTS = titles(("Apollo", "Hermes", "Atlas", "Juno", "Vega"), ("Migration", "Rollout", "Audit"))
SITES = titles(("Harbour", "Mill", "Station", "Tower", "Park"), ("House", "Court", "Plaza"))
COURSES = ("Intro to SQL", "Data Modelling", "Statistics I", "Python Basics", "Cloud Ops",
           "Design Thinking", "Public Speaking", "Negotiation", "Spanish A1", "Accounting")

# --- training domains ---------------------------------------------------------------------

TRAIN_DOMAINS = (
    Domain("hospital", (
        RTable("ward", "wards", "ward", (label("ward_name", WARDS, words="name"),
               number("floor_level", 0, 9, words="floor"), number("bed_count", 4, 60, words="number of beds")),
               rows=8, comment="hospital wards"),
        RTable("physician", "doctors", "doctor", (label("full_name", PEOPLE, words="name"),
               category("specialty", ("cardiology", "oncology", "surgery", "pediatrics")), fk("ward")),
               rows=10, comment="doctors; each belongs to one ward"),
        RTable("person", "patients", "patient", (label("full_name", PEOPLE, words="name"),
               codes("sex", (("F", "female"), ("M", "male"))), day("birth_date", 1940, 2015),
               category("city", CITIES), category("insurer", ("AOK", "TK", "Barmer"), nullable=True,
               comment="NULL = self-paying")),
               rows=16, comment="patients"),
        RTable("admission", "admissions", "admission", (fk("person"), fk("ward"),
               moment("admitted_at", 2023, 2024, words="admission time"),
               day("discharge_date", 2023, 2024, nullable=True, comment="NULL while still admitted"),
               number("total_cost", 100, 30000, decimals=2, words="cost", comment="in EUR")),
               rows=28, comment="hospital stays of patients"),
    )),
    Domain("sales", (
        RTable("country", "countries", "country", (label("country_name", COUNTRIES, words="name"),
               number("population_m", 1, 1400, words="population", comment="in millions")),
               rows=8, natural_key=("code", "CHAR(2)", ("CA", "FR", "DE", "JP", "BR", "IN", "IT", "MX")),
               comment="ISO country codes"),
        RTable("customer_account", "customers", "customer", (label("company_name", CLIENTS, words="name"),
               fk("country"), codes("segment", (("S", "small business"), ("E", "enterprise"), ("P", "public sector"))),
               day("opened_on", 2015, 2024, words="signup date")),
               rows=14, stem="customer", comment="customers"),
        RTable("product", "products", "product", (label("title", PRODUCTS, words="name"),
               category("product_group", ("hydraulics", "electrics", "energy"), words="category"),
               number("unit_price", 5, 900, decimals=2, words="price", comment="in USD")),
               rows=14, comment="products we sell"),
        RTable("invoice", "invoices", "invoice", (fk("customer_account"),
               day("issued_on", 2024, 2024, words="invoice date"),
               day("paid_on", 2024, 2024, words="payment date", nullable=True, comment="NULL = unpaid")),
               rows=22, comment="invoices sent to customers"),
        RTable("invoice_lines", "invoice lines", "invoice line", (fk("invoice"), fk("product"),
               number("quantity", 1, 400), number("line_total", 10, 90000, decimals=2, words="revenue",
               comment="revenue of the line in USD")),
               rows=34, stem="invoice_line", comment="sales: one row per product on an invoice"),
    )),
    Domain("fleet", (
        RTable("port", "ports", "port", (label("port_name", PORTS, words="name"), category("country", COUNTRIES)),
               rows=9, comment="harbours"),
        RTable("vessel", "ships", "ship", (label("vessel_name", SHIPS, words="name"), category("flag", FLAGS),
               number("gross_tonnage", 500, 90000, words="tonnage", comment="gross tonnage in tonnes"),
               number("build_year", 1985, 2023, words="build year"), fk("port", words="home port")),
               rows=14, comment="ships of the fleet"),
        RTable("voyage", "voyages", "voyage", (fk("vessel"), fk("port", words="destination port"),
               day("departure_date", 2024, 2024), day("arrival_date", 2024, 2024, nullable=True,
               comment="NULL while at sea"), number("cargo_tonnes", 10, 60000, words="cargo", comment="in tonnes")),
               rows=30, comment="trips of ships to a destination port"),
    )),
    Domain("workforce", (
        RTable("org_unit", "departments", "department", (label("unit_name", UNITS, words="name"),
               category("location", CITIES)), rows=8, stem="unit", comment="departments"),
        RTable("staff", "employees", "employee", (label("full_name", PEOPLE, words="name"), fk("org_unit"),
               codes("grade", (("J", "junior"), ("S", "senior"), ("L", "lead"))),
               day("hired_on", 2010, 2024, words="hire date"),
               number("monthly_salary", 2500, 12000, decimals=2, words="salary", comment="gross, in EUR"),
               day("left_on", 2020, 2024, nullable=True, words="leaving date", comment="NULL = still employed")),
               rows=18, comment="employees"),
        RTable("project", "projects", "project", (label("project_name", PROJECTS, words="name"),
               number("budget", 10000, 900000, comment="in EUR"),
               day("deadline", 2024, 2026, nullable=True, comment="NULL = open-ended")),
               rows=10, comment="projects"),
        RTable("timesheet", "timesheet entries", "timesheet entry", (fk("staff"), fk("project"),
               day("work_date", 2024, 2024), number("hours", 1, 12, decimals=1, comment="hours worked that day")),
               rows=34, comment="hours employees booked on projects"),
    )),
    Domain("utilities", (
        RTable("site", "buildings", "building", (label("site_name", SITES, words="name"), category("city", CITIES),
               number("floor_area", 200, 20000, words="floor area", comment="in square metres")),
               rows=8, comment="buildings we supply"),
        RTable("meter", "meters", "meter", (label("serial", titles(("MX", "QZ", "EL", "GW"), ("100", "200", "300", "400", "500")), "VARCHAR(20)", words="serial number"),
               fk("site"), codes("medium", (("E", "electricity"), ("G", "gas"), ("W", "water"))),
               day("installed_on", 2012, 2024, words="installation date")),
               rows=14, comment="meters installed in buildings"),
        RTable("reading", "meter readings", "meter reading", (fk("meter"),
               moment("read_at", 2024, 2024, words="reading time"),
               number("consumption", 1, 9000, decimals=1, comment="kWh (electricity, gas) or litres (water)")),
               rows=30, comment="meter readings"),
    )),
    Domain("training_center", (
        RTable("instructor", "teachers", "teacher", (label("full_name", PEOPLE, words="name"),
               category("country", COUNTRIES)), rows=8, comment="teachers"),
        RTable("course", "courses", "course", (label("course_title", COURSES, words="title"), fk("instructor"),
               codes("level", (("B", "beginner"), ("I", "intermediate"), ("A", "advanced"))),
               number("fee", 50, 2000, decimals=2, comment="in EUR")),
               rows=10, comment="courses"),
        RTable("learner", "students", "student", (label("full_name", PEOPLE, words="name"), category("city", CITIES),
               category("email_domain", ("gmail.com", "outlook.com", "proton.me"), nullable=True, words="email domain")),
               rows=14, comment="students"),
        RTable("enrolment", "enrolments", "enrolment", (fk("course"), fk("learner"),
               day("enrolled_on", 2024, 2024, words="enrolment date"),
               number("final_score", 0, 100, nullable=True, words="score", comment="0-100; NULL = not graded yet")),
               rows=30, comment="students enrolled in courses"),
    )),
)

# --- held-out domains (never in training, other words and tables) ----------------------------

AIRPORTS = (("AMS", "Schiphol"), ("CDG", "Charles de Gaulle"), ("FRA", "Frankfurt"), ("LIS", "Lisbon"),
            ("OSL", "Gardermoen"), ("WAW", "Chopin"), ("VIE", "Schwechat"), ("ZRH", "Kloten"))
FARMS = titles(("Green", "Hill", "Willow", "Stone", "Meadow"), ("Farm", "Acres"))
PARCELS = titles(("Upper", "Lower", "Long", "Wet", "Old", "Far"), ("Field", "Meadow", "Paddock"))
SHOWS = titles(("The", "A"), ("Glass", "Silent", "Paper", "Winter", "Iron"), ("Garden", "Crown", "Tide"))
REGISTRATIONS = tuple(f"{a}{b}" for a in ("D-A", "F-G", "PH-B", "OE-L") for b in ("BC", "KX", "MR", "TW"))
VENUES = titles(("Royal", "Civic", "Grand", "Little"), ("Theatre", "Playhouse", "Hall"))

HELDOUT_DOMAINS = (
    Domain("aviation", (
        RTable("airport", "airports", "airport", (label("airport_name", tuple(n for _, n in AIRPORTS), words="name"),
               category("country", COUNTRIES)), rows=8,
               natural_key=("iata_code", "CHAR(3)", tuple(c for c, _ in AIRPORTS)), stem="airport",
               comment="airports"),
        RTable("aircraft", "planes", "plane", (label("registration", REGISTRATIONS, "VARCHAR(10)"),
               category("model", ("A320", "A330", "B737", "E190")), number("seat_count", 70, 400, words="seat count"),
               day("delivered_on", 2000, 2023, words="delivery date"), fk("airport", words="home base")),
               rows=14, comment="planes of the airline"),
        RTable("mechanic", "technicians", "technician", (label("full_name", PEOPLE, words="name"),
               codes("licence", (("A", "line maintenance"), ("B", "base maintenance"), ("C", "certifying staff")))),
               rows=10, comment="technicians"),
        RTable("work_order", "repairs", "repair", (fk("aircraft"), fk("mechanic"),
               moment("opened_at", 2024, 2024, words="opening time"),
               moment("closed_at", 2024, 2024, nullable=True, words="closing time", comment="NULL while open"),
               number("labour_hours", 1, 300, decimals=1, words="labour hours")),
               rows=30, comment="maintenance jobs on planes"),
    )),
    Domain("farming", (
        RTable("farm", "farms", "farm", (label("farm_name", FARMS, words="name"), category("region", ("Flanders", "Bavaria", "Normandy", "Tuscany"))),
               rows=8, comment="farms"),
        RTable("parcel", "fields", "field", (label("parcel_name", PARCELS, words="name"), fk("farm"),
               number("area_ha", 1, 90, decimals=2, words="area", comment="in hectares"),
               codes("soil", (("C", "clay"), ("S", "sand"), ("L", "loam")))),
               rows=16, comment="fields of a farm"),
        RTable("crop", "crops", "crop", (label("crop_name", ("wheat", "barley", "maize", "rapeseed", "potato", "sugar beet"), words="name"),
               number("days_to_maturity", 60, 200, words="growing days")),
               rows=6, natural_key=("crop_code", "VARCHAR(4)", ("WHT", "BRL", "MZE", "RPS", "POT", "SGB")),
               stem="crop", comment="crops"),
        RTable("harvest", "harvests", "harvest", (fk("parcel"), fk("crop"), day("harvest_date", 2023, 2024),
               number("yield_tonnes", 1, 900, decimals=1, words="yield", comment="in tonnes"),
               number("moisture_pct", 8, 30, decimals=1, nullable=True, words="moisture", comment="percent; NULL = not measured")),
               rows=28, comment="harvests of a crop on a field"),
    )),
    Domain("theatre", (
        RTable("venue", "theatres", "theatre", (label("venue_name", VENUES, words="name"), category("city", CITIES),
               number("capacity", 80, 2500, words="capacity", comment="seats")),
               rows=8, comment="theatres"),
        RTable("production", "shows", "show", (label("title", SHOWS), fk("venue"),
               category("genre", ("opera", "ballet", "musical", "drama")),
               day("premiere_date", 2022, 2024, words="premiere date")),
               rows=14, comment="shows staged at a theatre"),
        RTable("ticket_sale", "ticket sales", "ticket sale", (fk("production"),
               moment("sold_at", 2024, 2024, words="sale time"),
               number("price", 5, 250, decimals=2, comment="in EUR"),
               category("discount_code", ("STUDENT", "SENIOR", "EARLY"), nullable=True, words="discount code",
                        comment="NULL = full price")),
               rows=32, comment="tickets sold for shows"),
    )),
)

DOMAINS = {d.key: d for d in TRAIN_DOMAINS + HELDOUT_DOMAINS}


# --- rows ---------------------------------------------------------------------------------

RDatabase = dict  # table name -> list of row dicts: "key" (the primary key), "fk:<parent>", columns


def _uniques(col: RCol, n: int, rng: random.Random) -> list:
    if col.kind == "number":
        scale = 10 ** col.decimals
        lo, hi = int(col.low * scale), int(col.high * scale)
        picks = rng.sample(range(lo, hi + 1), min(n, hi - lo + 1))
        while len(picks) < n:
            picks.append(rng.randint(lo, hi))
        return [p if col.decimals == 0 else round(p / scale, col.decimals) for p in picks]
    first = date(int(col.low), 1, 1)
    span = (date(int(col.high), 12, 31) - first).days
    days = [first + timedelta(days=d) for d in rng.sample(range(span + 1), n)]
    if col.kind == "timestamp":
        return [datetime(d.year, d.month, d.day, rng.randint(7, 19), rng.choice((0, 15, 30, 45)))
                for d in days]
    return days


def populate(domain: Domain, seed: int) -> RDatabase:
    """Deterministic rows; every parent has a child, nullable columns hold some NULLs."""
    rng = random.Random(f"{seed}:real:{domain.key}")
    db: RDatabase = {}
    for table in domain.tables:
        n = table.rows
        cols: dict = {"key": list(table.natural_key[2][:n]) if table.natural_key else list(range(1, n + 1))}
        for col in table.columns:
            if col.kind == "label":
                vals = rng.sample(col.pool, n)
            elif col.kind == "category":
                pool = list(col.values())
                vals = [pool[i % len(pool)] if i < len(pool) else rng.choice(pool) for i in range(n)]
                rng.shuffle(vals)
            elif col.kind == "fk":
                parents = [r["key"] for r in db[col.references]]
                vals = parents + [rng.choice(parents) for _ in range(n - len(parents))]
                rng.shuffle(vals)
            else:
                vals = _uniques(col, n, rng)
            if col.nullable:
                for i in rng.sample(range(n), max(1, n // 4)):
                    vals[i] = None
            cols[col.name or f"fk:{col.references}"] = vals
        db[table.name] = [{c: v[i] for c, v in cols.items()} for i in range(n)]
    return db


# --- rendering ------------------------------------------------------------------------------

def column_name(style: Style, domain: Domain, table: RTable, col: RCol) -> str:
    return style.fk_name(domain.table(col.references)) if col.kind == "fk" else col.name


def _type(style: Style, sql_type: str) -> str:
    return sql_type.lower() if style.lower_types else sql_type


def _column_comment(style: Style, domain: Domain, col: RCol | None, table: RTable) -> str:
    if style.comments == "none":
        return ""
    if col is None:  # the key
        return f"identifies the {table.singular}" if style.comments == "every" else ""
    if col.kind == "fk":
        parent = domain.table(col.references)
        text = f"the {col.words or parent.singular}: {parent.name}"
        return text if style.comments == "every" or col.words else ""
    if style.comments == "some" and col.words and col.words != col.name.replace("_", " "):
        # A synonym: the word questions use where the name differs ("sale time" for sold_at),
        # so training shows comments that map question words to columns.
        return f"{col.words}, {col.comment}" if col.comment else col.words
    if col.comment:
        return col.comment
    return col.phrase if style.comments == "every" else ""


def _column_defs(style: Style, domain: Domain, table: RTable) -> list[tuple[str, str]]:
    """(definition, comment) per column, the key first."""
    key = style.key_name(table)
    key_type = table.natural_key[1] if table.natural_key else "INTEGER"
    inline_pk = style.layout != "table_constraints"
    defs = [(f"{key} {_type(style, key_type)}" + (" PRIMARY KEY" if inline_pk else " NOT NULL"),
             _column_comment(style, domain, None, table))]
    for col in table.columns:
        name = column_name(style, domain, table, col)
        parent = domain.table(col.references) if col.kind == "fk" else None
        ctype = (parent.natural_key[1] if parent and parent.natural_key else col.sql_type)
        text = f"{name} {_type(style, ctype)}"
        if style.constraints:
            if not col.nullable and col.kind != "fk":
                text += " NOT NULL"
            if col.default:
                text += f" DEFAULT {col.default}"
            if col.check:
                text += " CHECK (" + col.check.format(c=name) + ")"
        if parent and style.layout != "table_constraints":
            text += f" REFERENCES {parent.name}" + \
                (f" ({style.key_name(parent)})" if style.layout != "oneline" else f"({style.key_name(parent)})")
        defs.append((text, _column_comment(style, domain, col, table)))
    if style.extra_timestamps:
        defs.append((f"created_at {_type(style, 'TIMESTAMP')} NOT NULL DEFAULT now()", ""))
    if style.layout == "table_constraints":
        defs.append((f"PRIMARY KEY ({key})", ""))
        for col in table.of_kind("fk"):
            parent = domain.table(col.references)
            defs.append((f"FOREIGN KEY ({column_name(style, domain, table, col)}) "
                         f"REFERENCES {parent.name} ({style.key_name(parent)})", ""))
    return defs


def table_ddl(style: Style, domain: Domain, table: RTable) -> str:
    defs = _column_defs(style, domain, table)
    if style.layout == "oneline":
        return f"CREATE TABLE {table.name} ({', '.join(d for d, _ in defs)});"
    head = f"CREATE TABLE {table.name} ("
    if style.comments != "none" and table.comment:
        head += f"  -- {table.comment}"
    lines = [head]
    for i, (text, comment) in enumerate(defs):
        line = "    " + text + ("," if i < len(defs) - 1 else "")
        lines.append(line + (f"  -- {comment}" if comment else ""))
    lines.append(");")
    return "\n".join(lines)


def ddl(style: Style, domain: Domain) -> str:
    return "\n".join(table_ddl(style, domain, t) for t in domain.tables)


def _literal(value) -> str:
    if isinstance(value, (date, datetime)):
        return sql_literal(value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat())
    return sql_literal(value)


def setup_sql(style: Style, domain: Domain, db: RDatabase) -> str:
    """The styled DDL and INSERTs: builds the database gold SQL runs on."""
    parts = [ddl(style, domain)]
    for table in domain.tables:
        names = [style.key_name(table)] + [column_name(style, domain, table, c) for c in table.columns]
        keys = ["key"] + [c.name or f"fk:{c.references}" for c in table.columns]
        values = ",\n  ".join("(" + ", ".join(_literal(row[k]) for k in keys) + ")"
                              for row in db[table.name])
        parts.append(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES\n  {values};")
    return "\n".join(parts)

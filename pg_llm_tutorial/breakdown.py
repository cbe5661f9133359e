"""Execution match of the tutorial's latest evaluation split by schema style, by the need for
a join and by question kind (issue 15): read from llm.evaluation_items joined to demo_eval,
printed in the summary, kept in summary.json and drawn as accuracy_by_style.png.

Style comes from demo_eval.schema_key: "simple" for the generator's one-line schemas,
"<domain>/<style>" for real-style ones (realistic.py). An answer that did not run counts as
a miss (execution_match NULL is false here, unlike avg() over the raw column).
"""

from __future__ import annotations

from pathlib import Path

ENTRY = """CASE WHEN e.version IS NOT NULL AND e.version > 1 THEN e.model || ' v' || e.version
                 ELSE e.entry END"""
STYLE = """CASE WHEN d.schema_key LIKE '%/%' THEN split_part(d.schema_key, '/', 2)
                 WHEN d.schema_key = 'sql-create-context' THEN d.schema_key ELSE 'simple' END"""
QUERY = f"""
SELECT {ENTRY} AS entry, min(e.id) AS ord, {{part}} AS part, count(*) AS n,
       avg(coalesce(i.execution_match, false)::int)::float8 AS execution_match
FROM llm.evaluations e
JOIN llm.evaluation_items i ON i.evaluation_id = e.id
JOIN demo_eval d ON d.id::text = i.item_id
WHERE e.run_id = (SELECT max(run_id) FROM llm.evaluations)
GROUP BY 1, 3 ORDER BY 2, 3"""
# The targets are on all real-style questions (trained styles and `documented`
# together) and on those of them that need a join: one row each per model.
REAL = f"""
SELECT {ENTRY} AS entry, min(e.id) AS ord, count(*) AS n,
       avg(coalesce(i.execution_match, false)::int)::float8,
       count(*) FILTER (WHERE d.gold_sql LIKE '% JOIN %'),
       avg(coalesce(i.execution_match, false)::int) FILTER (WHERE d.gold_sql LIKE '% JOIN %')::float8
FROM llm.evaluations e
JOIN llm.evaluation_items i ON i.evaluation_id = e.id
JOIN demo_eval d ON d.id::text = i.item_id
WHERE e.run_id = (SELECT max(run_id) FROM llm.evaluations) AND d.schema_key LIKE '%/%'
GROUP BY 1 ORDER BY 2"""
PARTS = {"style": STYLE,
         "join": "CASE WHEN d.gold_sql LIKE '% JOIN %' THEN 'needs join' ELSE 'one table' END",
         "kind": "d.kind"}


def read_breakdown(conn) -> dict:
    """{"real"|"style"|"join"|"kind": [{"entry", "part", "n", "execution_match"}, ...]};
    empty when there is no demo_eval to join (an evaluation on other data). "real" has the
    parts "real-style" (every real-style question) and "real-style, join"."""
    if conn.execute("SELECT to_regclass('demo_eval')").fetchone()[0] is None:
        return {}
    out = {}
    for name, expr in PARTS.items():
        rows = conn.execute(QUERY.format(part=expr)).fetchall()
        out[name] = [{"entry": r[0], "part": r[2], "n": r[3], "execution_match": r[4]} for r in rows]
    out["real"] = [row for entry, _, n, em, n_join, em_join in conn.execute(REAL).fetchall()
                   for row in ({"entry": entry, "part": "real-style", "n": n, "execution_match": em},
                               {"entry": entry, "part": "real-style, join", "n": n_join,
                                "execution_match": em_join or 0.0})
                   if row["n"]]
    return out


def format_breakdown(breakdown: dict) -> str:
    lines = []
    titles = {"real": "real-style questions (issue 15 targets: >= 50% all, >= 30% with a join)",
              "style": "style", "join": "join need"}
    for name in ("real", "style", "join"):
        rows = breakdown.get(name) or []
        if not rows:
            continue
        parts = list(dict.fromkeys(r["part"] for r in rows))
        entries = list(dict.fromkeys(r["entry"] for r in rows))
        cell = {(r["entry"], r["part"]): r for r in rows}
        lines.append(f"\n  execution match on {titles[name]}:" if name == "real"
                     else f"\n  execution match by {titles[name]}:")
        lines.append("  " + f"{'model':<22}" + "".join(f"{p[:16]:>18}" for p in parts))
        for entry in entries:
            cells = []
            for p in parts:
                r = cell.get((entry, p))
                cells.append("-" if r is None else f"{100 * r['execution_match']:.0f}% of {r['n']}")
            lines.append("  " + f"{entry:<22}" + "".join(f"{c:>18}" for c in cells))
    return "\n".join(lines)


def plot_breakdown(breakdown: dict, path: Path) -> bool:
    """Grouped bars: execution match per schema style (and join need) for each model."""
    rows = (breakdown.get("style") or []) + (breakdown.get("join") or [])
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = list(dict.fromkeys(r["part"] for r in rows))
    entries = list(dict.fromkeys(r["entry"] for r in rows))
    cell = {(r["entry"], r["part"]): r["execution_match"] for r in rows}
    width = 0.8 / len(entries)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(parts) + 2), 4.2), dpi=100)
    for k, entry in enumerate(entries):
        xs = [i + (k - (len(entries) - 1) / 2) * width for i in range(len(parts))]
        ax.bar(xs, [100 * (cell.get((entry, p)) or 0.0) for p in parts], width, label=entry)
    ax.set_xticks(range(len(parts)), parts, rotation=20)
    ax.set_ylabel("execution match (%)")
    ax.set_ylim(0, 100)
    ax.set_title("held-out questions by schema style and join need")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Title": "accuracy by style", "Description": ", ".join(entries)})
    plt.close(fig)
    return True

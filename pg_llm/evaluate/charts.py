"""A PNG bar chart comparing the models of one evaluation run (CLI side only).

Reads llm.evaluations over a psycopg connection (pg_llm.catalog.reports); matplotlib (Agg)
is imported here only, so the backend never loads it. The PNG's tEXt chunks name the run and its models, so a script
(or a test) can tell what a chart shows without looking at pixels.
"""

from __future__ import annotations

from pg_llm.catalog import reports

METRICS = [("execution_match", "execution match"), ("exact_match", "exact match"),
           ("succinct_rate", "succinct")]


def resolve_run(conn, ref: str) -> int:
    """'latest' -> the newest run; a number -> the run that evaluation id belongs to."""
    if ref == "latest":
        run_id = reports.latest_evaluation_run(conn)
        if run_id is None:
            raise SystemExit("pg-llm plot: no evaluations yet (run SELECT * FROM llm_evaluate(...))")
        return run_id
    if not ref.isdigit():
        raise SystemExit(f"pg-llm plot: evaluation must be an id or 'latest', got {ref!r}")
    run_id = reports.evaluation_run_of(conn, int(ref))
    if run_id is None:
        raise SystemExit(f"pg-llm plot: evaluation {ref} does not exist "
                         "(SELECT id, run_id, model FROM llm.evaluations)")
    return run_id


def label(row: dict) -> str:
    """The entry as the user wrote it, with the version it resolved to when implicit."""
    if "@" in row["entry"] or row["version"] is None:
        return row["entry"]
    return f"{row['entry']} (v{row['version']})"


def plot_run(conn, ref: str, output: str) -> tuple[int, list[str]]:
    """Write the chart of run ``ref`` to ``output``; returns (run id, model labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_id = resolve_run(conn, ref)
    rows = reports.evaluation_run(conn, run_id)
    labels = [label(r) for r in rows]
    width = 0.8 / len(METRICS)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows) + 2), 4.2), dpi=100)
    for offset, (key, title) in enumerate(METRICS):
        xs = [i + (offset - (len(METRICS) - 1) / 2) * width for i in range(len(rows))]
        values = [100 * (r[key] or 0.0) for r in rows]
        bars = ax.bar(xs, values, width, label=title)
        for bar, row in zip(bars, rows):
            text = "n/a" if row[key] is None else f"{100 * row[key]:.0f}"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(rows)), labels)
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of examples")
    name = rows[0]["name"] or f"evaluation run {run_id}"
    ax.set_title(f"{name} (n = {rows[0]['n']}, executable = {rows[0]['n_executable']})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(output, format="png", metadata={
        "Title": name, "Description": "models: " + ", ".join(labels),
        "Software": "pg_llm evaluate"})
    plt.close(fig)
    return run_id, labels

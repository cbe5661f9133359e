"""The evaluation summary as a fixed-width text table (NOTICE of llm_evaluate, the CLI)."""

from __future__ import annotations

COLUMNS = [("model", "model"), ("version", "version"), ("n", "n"),
           ("execution_match", "exec match"), ("exact_match", "exact"),
           ("succinct_rate", "succinct"), ("avg_prompt_tokens", "prompt tok"),
           ("avg_completion_tokens", "compl tok"), ("avg_latency_ms", "latency ms"),
           ("cost_usd", "cost usd")]
_RATES = {"execution_match", "exact_match", "succinct_rate"}


def _cell(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key in _RATES:
        return f"{100 * float(value):.1f}%"
    if key in ("avg_prompt_tokens", "avg_completion_tokens"):
        return f"{float(value):.1f}"
    if key == "avg_latency_ms":
        return f"{float(value):.0f}"
    if key == "cost_usd":
        return f"{float(value):.6f}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    """Rows shaped like llm_evaluate's result (keys = its column names)."""
    header = [title for _, title in COLUMNS]
    lines = [[_cell(key, row.get(key)) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def render(cells):
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    return "\n".join([render(header), "-+-".join("-" * w for w in widths), *map(render, lines)])

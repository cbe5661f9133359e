"""Point 13 of issue 9: docs/security.md names the test that proves each line; every test it
names must exist (a renamed or deleted test would leave a line unproven)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"


def named_tests(text: str) -> list[tuple[str, str | None]]:
    """(file, test or None) for every `tests/...py[::name]` and `::name` (same file as the
    last one named) in backticks, in order."""
    found, last = [], None
    for span in re.findall(r"`([^`]+)`", text):
        match = re.fullmatch(r"(tests/[\w/]+\.py)?(?:::(\w+))?", span.strip())
        if not match or not (match.group(1) or match.group(2)):
            continue
        last = match.group(1) or last
        found.append((last, match.group(2)))
    return found


def test_every_test_named_in_security_md_exists():
    names = named_tests(DOC.read_text())
    assert len(names) > 30
    missing = []
    for file, test in names:
        path = ROOT / file if file else None
        if path is None or not path.exists():
            missing.append(f"{file}::{test}")
        elif test and not re.search(rf"^(async )?def {test}\(", path.read_text(), re.M):
            missing.append(f"{file}::{test}")
    assert missing == []

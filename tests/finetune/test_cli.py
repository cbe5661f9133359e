"""`pg-llm jobs`, `pg-llm jobs --watch` and `pg-llm plot job` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fake_finetune_provider import train_loss

PG_LLM = [str(Path(sys.executable).parent / "pg-llm")]


def run(args, timeout=60):
    return subprocess.run(PG_LLM + args, capture_output=True, text=True, timeout=timeout)


def test_watch_follows_a_job_to_the_end_then_plot(db, dsn, hosted, tmp_path):
    hosted.script("succeed", steps=5, step_seconds=1.0)
    job_id = db.execute("SELECT job_id FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$, "
                        "options => '{\"validation_fraction\": 0.2}')").fetchone()[0]
    # Nobody waits in SQL: --watch calls llm_refresh() itself until the job is done.
    out = run(["jobs", "--dsn", dsn, "--watch", "--interval", "0.2"])
    assert out.returncode == 0, out.stderr
    assert f"job {job_id} ft_sql" in out.stderr and "succeeded -> version 2" in out.stderr
    assert "5/5" in out.stderr                       # the tqdm bar reached the last step
    assert db.execute("SELECT status FROM llm.jobs WHERE id = %s", (job_id,)).fetchone()[0] == \
        "succeeded"
    listing = run(["jobs", "--dsn", dsn, "--no-refresh"]).stdout.splitlines()
    assert listing[0].split()[:3] == ["id", "model", "status"]
    assert listing[1].split()[:5] == [str(job_id), "ft_sql", "succeeded", "5/5",
                                      f"{train_loss(5):.4f}"]

    png = tmp_path / "loss.png"
    out = run(["plot", "job", str(job_id), "-o", str(png), "--dsn", dsn])
    assert out.returncode == 0, out.stderr
    assert "(5 steps)" in out.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_plot_unknown_job_fails_clearly(dsn, tmp_path):
    out = run(["plot", "job", "4242", "-o", str(tmp_path / "x.png"), "--dsn", dsn])
    assert out.returncode != 0 and "job 4242 does not exist" in out.stderr

"""Persistence of uploaded files, fine-tuning jobs, their events and adapters in the data dir.

Layout (everything plain JSON so a crash leaves readable state):
    files/<file-id>.json  + files/<file-id>.data
    jobs/<job-id>/job.json, jobs/<job-id>/events.jsonl, jobs/<job-id>/adapter.gguf
JSON files are written to a temp file, fsynced and renamed over the old one (os.replace), so
a crash leaves the old or the new version, never half of one. Events are appended one line
per write; a line torn by a crash is skipped when reading and terminated before the next
append, so it never makes the other events unreadable.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path

log = logging.getLogger("pg_llm.serve")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as f:
        f.write(json.dumps(obj, indent=1))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_lines(path: Path) -> list[dict]:
    events = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s line %d is not JSON (torn by a crash?): skipped", path, n)
    return events


class Store:
    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir).expanduser()
        self.files_dir = self.root / "files"
        self.jobs_dir = self.root / "jobs"
        self.cache_dir = self.root / "cache"
        for d in (self.files_dir, self.jobs_dir, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    # ---- files
    def add_file(self, filename: str, purpose: str, content: bytes) -> dict:
        file_id = new_id("file")
        (self.files_dir / f"{file_id}.data").write_bytes(content)
        meta = {"id": file_id, "object": "file", "bytes": len(content),
                "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                "status": "processed", "status_details": None}
        _write_json(self.files_dir / f"{file_id}.json", meta)
        return meta

    def get_file(self, file_id: str) -> dict | None:
        path = self.files_dir / f"{Path(file_id).name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def file_path(self, file_id: str) -> Path:
        return self.files_dir / f"{Path(file_id).name}.data"

    def list_files(self) -> list[dict]:
        metas = [json.loads(p.read_text()) for p in self.files_dir.glob("*.json")]
        return sorted(metas, key=lambda m: (m["created_at"], m["id"]), reverse=True)

    def delete_file(self, file_id: str) -> bool:
        meta = self.files_dir / f"{Path(file_id).name}.json"
        if not meta.exists():
            return False
        meta.unlink()
        self.file_path(file_id).unlink(missing_ok=True)
        return True

    # ---- jobs
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / Path(job_id).name

    def save_job(self, job: dict) -> None:
        with self._lock:
            d = self.job_dir(job["id"])
            d.mkdir(exist_ok=True)
            _write_json(d / "job.json", job)

    def get_job(self, job_id: str) -> dict | None:
        path = self.job_dir(job_id) / "job.json"
        with self._lock:
            return json.loads(path.read_text()) if path.exists() else None

    def update_job(self, job_id: str, **changes) -> dict:
        with self._lock:
            job = self.get_job(job_id)
            job.update(changes)
            self.save_job(job)
            return job

    def list_jobs(self) -> list[dict]:
        """Newest first, like OpenAI's list endpoints."""
        with self._lock:
            jobs = [json.loads(p.read_text()) for p in self.jobs_dir.glob("*/job.json")]
        return sorted(jobs, key=lambda j: (j["created_at"], j["_seq"]), reverse=True)

    def next_job_seq(self) -> int:
        with self._lock:
            return 1 + max((j["_seq"] for j in self.list_jobs()), default=0)

    def add_event(self, job_id: str, message: str, level: str = "info",
                  data: dict | None = None, type_: str = "message") -> dict:
        with self._lock:
            path = self.job_dir(job_id) / "events.jsonl"
            old = path.read_bytes() if path.exists() else b""
            seq = old.count(b"\n") + 1  # torn lines count too: ids stay unique
            event = {"object": "fine_tuning.job.event", "id": f"ftevent-{job_id[6:]}-{seq:06d}",
                     "created_at": int(time.time()), "level": level, "message": message,
                     "data": data or {}, "type": type_}
            torn = old and not old.endswith(b"\n")
            line = ("\n" if torn else "") + json.dumps(event) + "\n"
            with path.open("a") as f:
                f.write(line)  # one write: a crash tears at most this line
            return event

    def list_events(self, job_id: str) -> list[dict]:
        """Newest first, like OpenAI."""
        path = self.job_dir(job_id) / "events.jsonl"
        with self._lock:
            if not path.exists():
                return []
            events = _read_lines(path)
        return events[::-1]

"""What every replica reads from the shared data dir instead of its own memory.

A fine-tune runs in a Ray task anywhere in the cluster and writes its job record and adapters
under <data-dir>/jobs (pg_llm.serve.store), so a replica learns about new fine-tuned models
by reading the jobs there, and asks for a running job's cancellation by writing it there.
"""

from __future__ import annotations

import threading
import time

from ..registry import FineTunedModel, ModelRegistry
from ..store import Store
from ..training.jobs import JobManager

# Fine-tuned models are re-read at most this often; a model id not known yet is re-read at once.
REFRESH_INTERVAL_S = 1.0


class SharedRegistry(ModelRegistry):
    """Base models given at startup; fine-tuned models as the data dir has them now."""

    def __init__(self, base_models, store: Store):
        super().__init__(base_models)
        self.store = store
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            if not force and time.monotonic() - self._checked < REFRESH_INTERVAL_S:
                return
            self._checked = time.monotonic()
            found = {}
            for job in self.store.list_jobs():
                if job["status"] != "succeeded" or not job.get("fine_tuned_model") or \
                        job.get("_model_deleted"):
                    continue
                job_dir = self.store.job_dir(job["id"])
                if (job_dir / "adapter.gguf").exists():
                    found[job["fine_tuned_model"]] = FineTunedModel(
                        job["fine_tuned_model"], job["model"], job_dir / "adapter.gguf",
                        job["finished_at"] or job["created_at"], job_dir / "adapter")
            self.fine_tuned = found

    def resolve(self, model_id: str):
        self.refresh()
        found = super().resolve(model_id)
        if found is None:  # trained a moment ago by a task, or deleted through another replica
            self.refresh(force=True)
            found = super().resolve(model_id)
        return found

    def list(self) -> list[dict]:
        self.refresh()
        return super().list()


class ReplicaJobs(JobManager):
    """A replica accepts, lists and cancels jobs; the scheduler actor runs them."""

    def __init__(self, store: Store, registry: SharedRegistry, wake=lambda: None, **kwargs):
        super().__init__(store, registry, **kwargs)
        self._wake_scheduler = wake

    def start(self) -> None:
        """Nothing to run or recover here: the scheduler owns both."""

    def stop(self) -> None:
        pass

    def create(self, body: dict) -> dict:
        self.registry.refresh(force=True)  # "is itself fine-tuned" needs the newest models
        job = super().create(body)
        self._wake_scheduler()
        return job

    def cancel(self, job_id: str) -> dict:
        job = self.get(job_id)
        if job["status"] == "running":
            # the process training it is elsewhere: its task watches for this flag
            return self.store.update_job(job_id, _cancel_requested=True)
        return super().cancel(job_id)

    def delete_model(self, model_id: str) -> None:
        self.registry.refresh(force=True)
        super().delete_model(model_id)

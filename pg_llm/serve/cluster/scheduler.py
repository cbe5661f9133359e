"""Runs fine-tuning jobs on the Ray cluster: one detached actor picks queued jobs from the
shared data dir (as the plain engine's runner thread does) and runs each as a Ray task, which
Ray places on a node with a free CPU. The task runs the usual training worker process and
records progress in the data dir, so any replica reports it.

The scheduler is detached and restarted by Ray when it dies, and no replica owns a task: a job
survives the loss of the replica that accepted it. A job caught running when the scheduler
itself is lost is failed as `job_interrupted` on its restart, exactly like the plain engine
after a crash (the previous version keeps serving).
"""

from __future__ import annotations

import threading
import time

import ray

from ..store import Store
from ..training.jobs import JobManager
from .shared import SharedRegistry

SCHEDULER_NAME = "pg_llm_job_scheduler"
NAMESPACE = "pg_llm"
CANCEL_POLL_S = 0.5


def _job_manager(config: dict) -> JobManager:
    from ..server import base_models

    store = Store(config["data_dir"])
    registry = SharedRegistry(base_models(config["model"], not config["no_default_model"],
                                          store.cache_dir), store)
    return JobManager(store, registry, n_threads=config["threads"],
                      max_queued_jobs=config["max_queued_jobs"])


@ray.remote(num_cpus=1, max_retries=0)
def run_job(config: dict, job_id: str) -> str:
    """One job, start to finish, on whichever node Ray chose; returns its final status."""
    jobs = _job_manager(config)
    done = threading.Event()

    def watch_for_cancel():  # a replica asks by writing _cancel_requested into the job
        while not done.wait(CANCEL_POLL_S):
            job = jobs.store.get_job(job_id)
            if job and job.get("_cancel_requested") and job["status"] == "running":
                try:
                    jobs.cancel(job_id)
                except Exception:  # noqa: BLE001 -- finished meanwhile: nothing to cancel
                    pass
                return

    watcher = threading.Thread(target=watch_for_cancel, daemon=True)
    watcher.start()
    try:
        jobs._execute(jobs.store.get_job(job_id))
    finally:
        done.set()
    return jobs.store.get_job(job_id)["status"]


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class JobScheduler:
    def __init__(self, config: dict):
        self.config = config
        self.jobs = _job_manager(config)
        self.jobs.recover()  # jobs a lost scheduler left running are failed, as after a crash
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="pg_llm-scheduler", daemon=True).start()

    def wake(self) -> None:
        self._wake.set()

    def ping(self) -> bool:
        return True

    def _run(self) -> None:
        while True:
            job = self.jobs._next_job()  # validates uploaded files, then the oldest queued
            if job is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            try:
                ray.get(run_job.remote(self.config, job["id"]))
            except Exception as exc:  # noqa: BLE001 -- the task died (node lost, OOM kill)
                if self.jobs.store.get_job(job["id"])["status"] not in ("succeeded", "failed",
                                                                        "cancelled"):
                    self.jobs._fail(job["id"], "job_interrupted",
                                    f"The Ray task training this job was lost: {exc}")
            time.sleep(0)


def start_scheduler(config: dict):
    """The cluster's one scheduler (created once; later calls get the running one)."""
    return JobScheduler.options(name=SCHEDULER_NAME, namespace=NAMESPACE, lifetime="detached",
                                get_if_exists=True).remote(config)

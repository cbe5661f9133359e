"""Fine-tuning jobs on the server side: validation of a create request, a queue run one job at
a time by a worker process (pg_llm.serve.training.worker), cancellation and recovery after a
restart. Imports nothing heavy: the worker process does the training."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import bad_request, not_found, rate_limited
from ..numbers import valid_number
from ..registry import ModelRegistry, fine_tuned_model_id
from ..store import Store, new_id
from .datasets import DatasetError, parse_conversations

log = logging.getLogger("pg_llm.serve")

TERMINAL = ("succeeded", "failed", "cancelled")
MAX_SEED = 2**32 - 1  # what torch.manual_seed and llama.cpp's samplers take
SUFFIX_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_HYPERPARAMETERS = {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 1.0}
HYPERPARAMETER_RANGES = {"n_epochs": (int, 1, 50), "batch_size": (int, 1, 256),
                         "learning_rate_multiplier": (float, 1e-3, 10.0)}
# The local engine's own LoRA knobs (not in OpenAI's API): the adapter's rank and how many of
# the top layers it adapts. "auto" (left out of the job) means the worker's DEFAULT_LORA.
LORA_HYPERPARAMETER_RANGES = {"lora_rank": (int, 1, 256), "lora_layers": (int, 1, 1000)}
# Steady step times need glibc to keep freed memory (see docs/local-engine.md).
WORKER_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000",
                     "MALLOC_TOP_PAD_": "1000000000"}


def public(job: dict) -> dict:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _hyperparameters(body: dict) -> dict:
    raw = body.get("hyperparameters") or {}
    method = body.get("method") or {}
    if method:
        if method.get("type") not in (None, "supervised"):
            raise bad_request("Only method type 'supervised' is supported.", "method.type")
        raw = {**raw, **((method.get("supervised") or {}).get("hyperparameters") or {})}
    if not isinstance(raw, dict):
        raise bad_request("hyperparameters must be an object.", "hyperparameters")
    ranges = {**HYPERPARAMETER_RANGES, **LORA_HYPERPARAMETER_RANGES}
    unknown = set(raw) - set(ranges)
    if unknown:
        raise bad_request(f"Unknown hyperparameter(s): {', '.join(sorted(unknown))}.",
                          "hyperparameters")
    out = {}
    for name, (kind, low, high) in ranges.items():
        value = raw.get(name, "auto")
        if value == "auto" or value is None:
            if name in DEFAULT_HYPERPARAMETERS:  # the LoRA knobs stay out: the worker's default
                out[name] = DEFAULT_HYPERPARAMETERS[name]
            continue
        if not valid_number(value, low, high, kind):
            raise bad_request(f"hyperparameters.{name} must be 'auto' or a {kind.__name__} "
                              f"between {low} and {high}, got {value!r}.",
                              f"hyperparameters.{name}")
        out[name] = kind(value)
    return out


class JobManager:
    def __init__(self, store: Store, registry: ModelRegistry, *,
                 n_threads: int = 2, max_queued_jobs: int = 16, lora: dict | None = None,
                 on_training=lambda active: None):
        self.store = store
        self.registry = registry
        self.n_threads = n_threads
        self.max_queued_jobs = max_queued_jobs
        self.lora = lora or {}
        self.on_training = on_training  # tells inference to make room while a job trains
        self._wake = threading.Event()
        self._stopping = False
        self._cancel_requested: set[str] = set()
        self._proc: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._run, name="fine-tuning", daemon=True)
        self._thread.start()

    def recover(self) -> None:
        """Re-registers fine-tuned models; a job caught mid-flight by a crash is failed."""
        for job in self.store.list_jobs():
            if job["status"] in ("running", "validating_files"):
                was = job["status"]
                self._fail(job["id"], "job_interrupted",
                           f"The server stopped while this job was {was} (crash or restart); "
                           "its progress is lost. Create a new job to train again.")
            elif job["status"] == "succeeded" and job.get("fine_tuned_model") and \
                    not job.get("_model_deleted"):
                self._register(job)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        with self._lock:
            if self._proc and self._proc.poll() is None:
                self._proc.kill()
        if self._thread:
            self._thread.join(timeout=10)

    def _register(self, job: dict) -> None:
        job_dir = self.store.job_dir(job["id"])
        self.registry.add_fine_tuned(job["fine_tuned_model"], job["model"],
                                     job_dir / "adapter.gguf",
                                     job["finished_at"] or job["created_at"],
                                     peft_dir=job_dir / "adapter")

    def _discard_adapter(self, job_id: str) -> None:
        out_dir = self.store.job_dir(job_id)
        (out_dir / "adapter.gguf").unlink(missing_ok=True)
        shutil.rmtree(out_dir / "adapter", ignore_errors=True)

    def delete_model(self, model_id: str) -> None:
        """Unpublishes a fine-tuned model (its job keeps the record, flagged, across restarts)."""
        job_id = model_id.rsplit(":", 1)[-1]
        self.registry.remove_fine_tuned(model_id)
        if self.store.get_job(job_id):
            self.store.update_job(job_id, _model_deleted=True)
        (self.store.job_dir(job_id) / "adapter.gguf").unlink(missing_ok=True)

    # ---- API
    def create(self, body: dict) -> dict:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("Missing required parameter: 'model'.", "model")
        if model not in self.registry.base:
            if model in self.registry.fine_tuned:
                raise bad_request(f"Model {model} is itself fine-tuned; fine-tune its base "
                                  f"model {self.registry.fine_tuned[model].base} instead.",
                                  "model", "model_not_available")
            raise bad_request(f"Model {model} is not available for fine-tuning. Available: "
                              f"{', '.join(sorted(self.registry.base))}.", "model",
                              "model_not_available")
        training_file = self._check_file(body.get("training_file"), "training_file", True)
        validation_file = self._check_file(body.get("validation_file"), "validation_file",
                                           False)
        suffix = body.get("suffix")
        if suffix is not None and not (isinstance(suffix, str) and SUFFIX_PATTERN.match(suffix)):
            raise bad_request("suffix must be 1-64 characters of letters, digits, '_' or '-'.",
                              "suffix")
        seed = body.get("seed")
        if seed is not None and not valid_number(seed, 0, MAX_SEED, int):
            raise bad_request(f"seed must be an integer between 0 and {MAX_SEED}.", "seed")
        hyperparameters = _hyperparameters(body)
        waiting = [j for j in self.store.list_jobs() if j["status"] not in TERMINAL]
        if len(waiting) >= self.max_queued_jobs:
            raise rate_limited(f"{len(waiting)} fine-tuning jobs are already queued or running "
                               f"(limit {self.max_queued_jobs}); wait for one to finish.")
        job = {"object": "fine_tuning.job", "id": new_id("ftjob"), "model": model,
               "created_at": int(time.time()), "finished_at": None, "fine_tuned_model": None,
               "organization_id": "org-local", "result_files": [], "status": "validating_files",
               "validation_file": validation_file, "training_file": training_file,
               "hyperparameters": hyperparameters, "trained_tokens": None, "error": None,
               "seed": seed if seed is not None else 42, "estimated_finish": None,
               "integrations": [], "user_provided_suffix": suffix, "metadata": None,
               "method": {"type": "supervised",
                          "supervised": {"hyperparameters": hyperparameters}},
               "_seq": self.store.next_job_seq()}
        self.store.save_job(job)
        self.store.add_event(job["id"], f"Created fine-tuning job: {job['id']}")
        self._wake.set()
        return job

    def _check_file(self, file_id, param: str, required: bool) -> str | None:
        if file_id is None and not required:
            return None
        if not isinstance(file_id, str) or not file_id:
            raise bad_request(f"Missing required parameter: '{param}'.", param)
        meta = self.store.get_file(file_id)
        if meta is None:
            raise bad_request(f"File {file_id} not found.", param, "invalid_file")
        if meta["purpose"] != "fine-tune":
            raise bad_request(f"File {file_id} has purpose {meta['purpose']!r}; upload it with "
                              "purpose 'fine-tune'.", param, "invalid_file")
        return file_id

    def get(self, job_id: str) -> dict:
        job = self.store.get_job(job_id)
        if job is None:
            raise not_found(f"Fine-tuning job {job_id} not found.", "fine_tuning_job_id")
        return job

    def cancel(self, job_id: str) -> dict:
        # Read and change the status under the lock the runner finishes a job under: a cancel
        # racing completion either lands before it (cancelled, nothing published) or sees
        # the finished job (400), never half of each.
        with self._lock:
            job = self.get(job_id)
            if job["status"] in TERMINAL:
                raise bad_request(f"Job {job_id} has already {job['status']} and cannot be "
                                  "cancelled.", "fine_tuning_job_id", "job_not_cancellable")
            if job["status"] == "running":
                self._cancel_requested.add(job_id)
                if self._proc and self._proc.poll() is None:
                    self._proc.terminate()
                return job
            job = self.store.update_job(job_id, status="cancelled",
                                        finished_at=int(time.time()))
            self.store.add_event(job_id, "Fine-tuning job cancelled")
        return job

    # ---- runner
    def _run(self) -> None:
        while not self._stopping:
            job = self._next_job()
            if job is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            self.on_training(True)
            try:
                self._execute(job)
            except Exception as exc:  # never leave a job "running" because of a server bug
                log.exception("fine-tuning job %s crashed the runner", job["id"])
                self._fail(job["id"], "internal_error", f"{type(exc).__name__}: {exc}")
            finally:
                self.on_training(False)

    def _next_job(self) -> dict | None:
        jobs = sorted(self.store.list_jobs(), key=lambda j: j["_seq"])
        for job in jobs:
            if job["status"] == "validating_files":
                self._validate_files(job)
        for job in jobs:
            if self.store.get_job(job["id"])["status"] == "queued":
                return self.store.get_job(job["id"])
        return None

    def _validate_files(self, job: dict) -> None:
        for param in ("training_file", "validation_file"):
            file_id = job[param]
            if file_id is None:
                continue
            path = self.store.file_path(file_id)
            try:
                parse_conversations(path.read_bytes())
            except (OSError, DatasetError) as exc:
                self._fail(job["id"], "invalid_training_file",
                           f"{param} {file_id}: {exc}")
                return
        with self._lock:
            if self.store.get_job(job["id"])["status"] == "validating_files":
                self.store.update_job(job["id"], status="queued")
                self.store.add_event(job["id"], "Validated training file(s); job queued")

    def _spec(self, job: dict) -> Path:
        base = self.registry.base[job["model"]]
        out_dir = self.store.job_dir(job["id"])
        spec = {"job_id": job["id"], "parent_pid": os.getpid(), "base_model": job["model"],
                "base_model_path": str(base.gguf_path),
                "base_model_dir": str(base.hf_dir) if base.hf_dir else None, "cache_dir": str(self.store.cache_dir),
                "output_dir": str(out_dir),
                "training_file": str(self.store.file_path(job["training_file"])),
                "validation_file": (str(self.store.file_path(job["validation_file"]))
                                    if job["validation_file"] else None),
                "hyperparameters": job["hyperparameters"], "seed": job["seed"],
                "n_threads": self.n_threads, "lora": self.lora}
        path = out_dir / "spec.json"
        path.write_text(json.dumps(spec, indent=1))
        return path

    def _execute(self, job: dict) -> None:
        job_id = job["id"]
        spec = self._spec(job)
        with self._lock:
            if self.store.get_job(job_id)["status"] != "queued":
                return  # cancelled between pick-up and start
            self.store.update_job(job_id, status="running")
            log_file = (self.store.job_dir(job_id) / "worker.log").open("ab")
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "pg_llm.serve.training.worker", str(spec)],
                stdout=subprocess.PIPE, stderr=log_file, env={**os.environ, **WORKER_MALLOC_ENV})
        self.store.add_event(job_id, "Fine-tuning job started")
        outcome = None
        started = time.time()
        for line in self._proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            outcome = self._on_worker_event(job_id, event, started) or outcome
        rc = self._proc.wait()
        log_file.close()
        with self._lock:
            self._proc = None
            cancelled = job_id in self._cancel_requested
            self._cancel_requested.discard(job_id)
            if cancelled:
                # The worker may have written its adapter before the signal arrived (or even
                # finished): a cancelled job publishes nothing and keeps no adapter.
                self._discard_adapter(job_id)
                self.store.update_job(job_id, status="cancelled", finished_at=int(time.time()),
                                      estimated_finish=None)
                self.store.add_event(job_id, "Fine-tuning job cancelled")
            elif outcome and outcome["type"] == "done":
                self._succeed(job_id, outcome)
            elif outcome and outcome["type"] == "error":
                self._fail(job_id, outcome["code"], outcome["message"])
            elif self._stopping:
                self._fail(job_id, "job_interrupted",
                           "The server shut down while this job was running; create a new job.")
            else:
                tail = (self.store.job_dir(job_id) / "worker.log").read_text(
                    errors="replace")[-800:]
                self._fail(job_id, "training_failed",
                           f"The training worker exited with code {rc}. Log tail: {tail.strip()}")

    def _on_worker_event(self, job_id: str, event: dict, started: float) -> dict | None:
        kind = event.get("type")
        if kind == "step":
            data = {"step": event["step"], "train_loss": event["train_loss"],
                    "total_steps": event["total_steps"]}
            message = f"Step {event['step']}/{event['total_steps']}: training loss={event['train_loss']:.4f}"
            if "valid_loss" in event:
                data["valid_loss"] = event["valid_loss"]
                message += f", validation loss={event['valid_loss']:.4f}"
            self.store.add_event(job_id, message, data=data, type_="metrics")
            per_step = (time.time() - started) / event["step"]
            remaining = per_step * (event["total_steps"] - event["step"])
            self.store.update_job(job_id, estimated_finish=int(time.time() + remaining),
                                  trained_tokens=event["trained_tokens"])
        elif kind == "message":
            self.store.add_event(job_id, event["message"], level=event.get("level", "info"))
        elif kind == "started":
            self.store.add_event(job_id, f"Training {event['n_examples']} examples for "
                                         f"{event['total_steps']} steps "
                                         f"({event['trainable_params']} LoRA parameters)")
        elif kind in ("done", "error"):
            return event
        return None

    def _succeed(self, job_id: str, outcome: dict) -> None:
        job = self.get(job_id)
        model_id = fine_tuned_model_id(job["model"], job["user_provided_suffix"] or "local",
                                       job_id)
        job = self.store.update_job(job_id, status="succeeded", fine_tuned_model=model_id,
                                    finished_at=int(time.time()), estimated_finish=None,
                                    trained_tokens=outcome["trained_tokens"])
        self._register(job)
        self.store.add_event(
            job_id, f"Trained {outcome['steps']} steps in {outcome['train_seconds']:.1f} s "
                    f"(peak memory {outcome['peak_rss_mb']:.0f} MB)",
            data={k: outcome[k] for k in ("train_seconds", "peak_rss_mb", "cpu_seconds", "steps")})
        self.store.add_event(job_id, f"New fine-tuned model created: {model_id}")
        self.store.add_event(job_id, "The job has successfully completed")

    def _fail(self, job_id: str, code: str, message: str) -> None:
        self.store.update_job(job_id, status="failed", finished_at=int(time.time()),
                              estimated_finish=None,
                              error={"code": code, "message": message, "param": None})
        self.store.add_event(job_id, f"Fine-tuning job failed: {message}", level="error")

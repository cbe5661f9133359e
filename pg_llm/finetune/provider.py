"""Calls to an engine's files + fine_tuning.jobs API (OpenAI-compatible) and /v1/tokenize.

Every request goes through the one HTTP client (pg_llm.engines.client): the cached official
openai client, run in a worker thread while the backend polls for cancellation, with errors
translated to LlmError subclasses (API key scrubbed).
"""

from __future__ import annotations

from datetime import datetime, timezone
from dataclasses import dataclass, field

from pg_llm.engines.client import EngineSettings, get_client, run_in_workers, translate_error

# OpenAI's statuses -> ours. Unknown statuses count as running: we keep polling.
STATUS_MAP = {"validating_files": "queued", "queued": "queued", "pending": "queued",
              "running": "running", "succeeded": "succeeded", "failed": "failed",
              "cancelled": "cancelled", "cancelling": "running"}
FINISHED = ("succeeded", "failed", "cancelled")
EVENT_PAGE = 100


@dataclass
class ProviderJob:
    id: str
    status: str                          # ours: queued/running/succeeded/failed/cancelled
    fine_tuned_model: str | None
    trained_tokens: int | None
    error: str | None
    hyperparameters: dict = field(default_factory=dict)
    finished_at: int | None = None       # the provider's clock (epoch seconds)
    training_file: str | None = None
    validation_file: str | None = None

    @property
    def finished_at_iso(self) -> str:
        """When it ended per the provider, else 'now' (PostgreSQL's special input)."""
        if not self.finished_at:
            return "now"
        return datetime.fromtimestamp(self.finished_at, tz=timezone.utc).isoformat()


@dataclass
class ProviderEvent:
    id: str
    created_at: int | None
    level: str | None
    message: str | None
    step: int | None
    total_steps: int | None
    train_loss: float | None
    valid_loss: float | None


def _number(value, kind=float):
    try:
        return None if value is None else kind(value)
    except (TypeError, ValueError):
        return None


def _job(obj) -> ProviderJob:
    error = None
    if obj.status == "failed":
        err = getattr(obj, "error", None)
        message = getattr(err, "message", None) if err is not None else None
        code = getattr(err, "code", None) if err is not None else None
        error = (f"{code}: {message}" if code and message else message or code
                 or "the provider reported the job as failed without a reason")
    hyper = getattr(obj, "hyperparameters", None)
    hyper = hyper.model_dump(exclude_none=True) if hasattr(hyper, "model_dump") else (hyper or {})
    return ProviderJob(obj.id, STATUS_MAP.get(obj.status, "running"),
                       getattr(obj, "fine_tuned_model", None),
                       _number(getattr(obj, "trained_tokens", None), int), error, hyper,
                       _number(getattr(obj, "finished_at", None), int),
                       getattr(obj, "training_file", None), getattr(obj, "validation_file", None))


def _event(obj) -> ProviderEvent:
    data = getattr(obj, "data", None) or {}
    if not isinstance(data, dict):
        data = getattr(data, "__dict__", {}) or {}
    return ProviderEvent(obj.id, getattr(obj, "created_at", None), getattr(obj, "level", None),
                         getattr(obj, "message", None), _number(data.get("step"), int),
                         _number(data.get("total_steps"), int),
                         _number(data.get("train_loss")), _number(data.get("valid_loss")))


class Provider:
    """One engine's fine-tuning API, called from the backend with cancellation checks."""

    def __init__(self, settings: EngineSettings, check_interrupts=None):
        self.settings = settings
        self.check_interrupts = check_interrupts

    def _call(self, fn, model: str | None = None):
        client = get_client(self.settings)

        def task():
            try:
                return fn(client)
            except Exception as exc:
                raise translate_error(exc, self.settings, model) from None

        return run_in_workers([task], 1, self.check_interrupts)[0]

    def upload_jsonl(self, jsonl: str, filename: str) -> str:
        """Upload training data (one {"messages": [...]} object per line); returns its id."""
        return self._call(lambda c: c.files.create(
            file=(filename, jsonl.encode(), "application/jsonl"), purpose="fine-tune").id)

    def find_by_training_filename(self, filename: str) -> tuple[ProviderJob | None, str | None]:
        """(the job training on the file named `filename`, the file's id), newest first;
        (None, None) when no such file was uploaded."""

        def find(client):
            files = [f for f in client.files.list(purpose="fine-tune")
                     if getattr(f, "filename", None) == filename]
            if not files:
                return None, None
            ids = {f.id for f in files}
            for obj in client.fine_tuning.jobs.list(limit=EVENT_PAGE).data:   # newest first
                if obj.training_file in ids:
                    return _job(obj), obj.training_file
            return None, files[0].id

        return self._call(find)

    def delete_file(self, file_id: str) -> None:
        self._call(lambda c: c.files.delete(file_id))

    def create_job(self, model: str, training_file: str, hyperparameters: dict,
                   suffix: str | None, validation_file: str | None = None,
                   seed: int | None = None) -> ProviderJob:
        kwargs = {"model": model, "training_file": training_file,
                  "hyperparameters": hyperparameters}
        if suffix:
            kwargs["suffix"] = suffix
        if validation_file:
            kwargs["validation_file"] = validation_file
        if seed is not None:
            kwargs["seed"] = seed
        return _job(self._call(lambda c: c.fine_tuning.jobs.create(**kwargs), model))

    def retrieve(self, job_id: str) -> ProviderJob:
        return _job(self._call(lambda c: c.fine_tuning.jobs.retrieve(job_id)))

    def cancel(self, job_id: str) -> ProviderJob:
        return _job(self._call(lambda c: c.fine_tuning.jobs.cancel(job_id)))

    def new_events(self, job_id: str, known_ids: set[str]) -> list[ProviderEvent]:
        """Events not yet in known_ids, oldest first (the API lists newest first)."""

        def fetch(client):
            fresh = []
            for obj in client.fine_tuning.jobs.list_events(job_id, limit=EVENT_PAGE):
                if obj.id in known_ids:
                    break          # everything older is known too
                fresh.append(_event(obj))
            return fresh[::-1]

        return self._call(fetch)

    def count_tokens(self, model: str, conversations: list[list[dict]]) -> list[int]:
        """POST /tokenize per conversation (the local engine's extension), `concurrency` at
        a time."""
        client = get_client(self.settings)

        def one(messages):
            def task():
                try:
                    answer = client.post("/tokenize", cast_to=object,
                                         body={"model": model, "messages": messages})
                except Exception as exc:
                    raise translate_error(exc, self.settings, model) from None
                return int(answer["count"])
            return task

        return run_in_workers([one(m) for m in conversations], self.settings.concurrency,
                              self.check_interrupts)

"""A real loopback HTTP server speaking OpenAI's files + fine_tuning.jobs API, with scripted jobs.

It stands in for a hosted provider in tests: the backend talks to it through the official
`openai` client exactly as it would to api.openai.com. Jobs advance with wall-clock time (no
background thread), so a test controls them by choosing a script:

    provider = FakeFinetuneProvider().start()
    provider.script("fail", steps=4, fail_at=2)       # the next jobs fail at step 2
    provider.script_for_model("base-hang", "hang")    # jobs on this base model never finish
    ...
    provider.stop()                                    # or restart(keep_state=...)

Outcomes: "succeed" (after `steps` steps of `step_seconds`), "fail" (at step `fail_at`),
"hang" (runs one step, then nothing happens until cancelled).
Chat completions answer "[<model id>] <last user message>" so a test sees which version served.
Optional POST /v1/tokenize (like `pg-llm serve`) counts whitespace-separated words.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Script:
    outcome: str = "succeed"          # succeed | fail | hang
    steps: int = 3
    step_seconds: float = 0.05
    fail_at: int = 1
    validation_seconds: float = 0.02  # time spent in "validating_files" before running


@dataclass
class FakeJob:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    hyperparameters: dict
    script: Script
    created: float
    trained_tokens_per_epoch: int
    cancelled_at: float | None = None
    interrupted: bool = False          # the server was "restarted" while the job ran
    seq: int = 0


def train_loss(step: int) -> float:
    """A decreasing, deterministic loss curve; tests compare against this same function."""
    return round(2.5 * (0.8 ** step), 4)


def valid_loss(step: int) -> float:
    return round(train_loss(step) * 1.1, 4)


def count_words(messages: list[dict]) -> int:
    """The fake tokenizer: words plus 3 tokens of overhead per message."""
    return sum(len(str(m.get("content", "")).split()) + 3 for m in messages)


class FakeFinetuneProvider:
    def __init__(self, *, port: int = 0, tokenize: bool = False, api_key: str | None = None):
        self.port = port
        self.tokenize = tokenize
        self.api_key = api_key
        self.files: dict[str, dict] = {}
        self.file_data: dict[str, bytes] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[tuple[str, str]] = []     # (method, path) in arrival order
        self.default_script = Script()
        self.model_scripts: dict[str, Script] = {}
        self.base_models = ["fake-base"]
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._connections: set = set()

    # ---- control
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, outcome: str = "succeed", **kw) -> None:
        self.default_script = Script(outcome, **kw)

    def script_for_model(self, model: str, outcome: str = "succeed", **kw) -> None:
        self.model_scripts[model] = Script(outcome, **kw)

    def start(self) -> "FakeFinetuneProvider":
        provider = self

        class Handler(_Handler):
            fake = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Like a killed process: stop listening and cut open keep-alive connections."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restart(self, *, keep_state: bool) -> None:
        """A crash and restart. With keep_state the provider remembers its jobs but marks the
        ones that were running as failed (like an engine that persists state); without it the
        jobs are simply gone (404)."""
        self.stop()
        with self._lock:
            if keep_state:
                now = time.time()
                for job in self.jobs.values():
                    if self._status(job, now)[0] in ("validating_files", "running"):
                        job.interrupted = True
            else:
                self.jobs.clear()
        # The port may linger in TIME_WAIT briefly; SO_REUSEADDR is set by HTTPServer.
        self.start()

    # ---- job progress, computed from the clock
    def _status(self, job: FakeJob, now: float) -> tuple[str, int, dict | None]:
        """(status, steps done, error)."""
        s = job.script
        end = job.cancelled_at or now
        elapsed = end - job.created - s.validation_seconds
        if job.interrupted:
            done = max(0, min(s.steps, int(elapsed / s.step_seconds))) if elapsed > 0 else 0
            return "failed", done, {"code": "server_restarted",
                                    "message": "The engine restarted while the job was running.",
                                    "param": None}
        if elapsed < 0:
            status, done = "validating_files", 0
        else:
            done = int(elapsed / s.step_seconds)
            if s.outcome == "succeed" and done >= s.steps:
                status, done = "succeeded", s.steps
            elif s.outcome == "fail" and done >= s.fail_at:
                return "failed", s.fail_at, {"code": "training_diverged",
                                             "message": f"Loss diverged at step {s.fail_at}.",
                                             "param": None}
            elif s.outcome == "hang":
                status, done = "running", min(done, 1)
            else:
                status, done = "running", min(done, s.steps)
        if job.cancelled_at is not None:
            return "cancelled", done, None
        return status, done, None

    def fine_tuned_id(self, job: FakeJob) -> str:
        return f"ft:{job.model}:{job.suffix or 'custom'}:{job.id}"

    def job_object(self, job: FakeJob) -> dict:
        status, done, error = self._status(job, time.time())
        n_epochs = job.hyperparameters.get("n_epochs", 3)
        return {
            "object": "fine_tuning.job", "id": job.id, "model": job.model,
            "created_at": int(job.created), "organization_id": "org-fake",
            "training_file": job.training_file, "validation_file": job.validation_file,
            "hyperparameters": {"n_epochs": n_epochs,
                                "batch_size": job.hyperparameters.get("batch_size", 1),
                                "learning_rate_multiplier":
                                    job.hyperparameters.get("learning_rate_multiplier", 1.0)},
            "status": status, "error": error, "seed": 0, "result_files": [],
            "fine_tuned_model": self.fine_tuned_id(job) if status == "succeeded" else None,
            "finished_at": int(time.time()) if status in ("succeeded", "failed",
                                                          "cancelled") else None,
            "trained_tokens": (job.trained_tokens_per_epoch * n_epochs
                               if status == "succeeded" else None),
            "estimated_finish": None, "integrations": [], "method": None,
        }

    def job_events(self, job: FakeJob) -> list[dict]:
        """Oldest first."""
        status, done, error = self._status(job, time.time())
        events = [self._event(job, 0, "info", "Validating training file", {}, "message")]
        total = job.script.steps
        for step in range(1, done + 1):
            data = {"step": step, "total_steps": total, "train_loss": train_loss(step)}
            if job.validation_file:
                data["valid_loss"] = valid_loss(step)
            events.append(self._event(job, step, "info",
                                      f"Step {step}/{total}: training loss={train_loss(step)}",
                                      data, "metrics"))
        if status == "succeeded":
            events.append(self._event(job, total + 1, "info", "The job has successfully "
                                      "completed", {}, "message"))
        elif status == "failed":
            events.append(self._event(job, total + 1, "error", error["message"], {}, "message"))
        elif status == "cancelled":
            events.append(self._event(job, total + 1, "info", "The job was cancelled", {},
                                      "message"))
        return events

    @staticmethod
    def _event(job, n, level, message, data, type_):
        return {"object": "fine_tuning.job.event", "id": f"ftevent-{job.id}-{n:04d}",
                "created_at": int(job.created) + n, "level": level, "message": message,
                "data": data, "type": type_}

    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-fake{self._counter:04d}"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeFinetuneProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def setup(self):
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self):
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    # ---- plumbing
    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error",
                                      "param": None, "code": code}})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        if not self.fake.api_key:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.fake.api_key}":
            return True
        self._error(401, "Incorrect API key provided", "invalid_api_key")
        return False

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        with self.fake._lock:
            self.fake.requests.append((method, url.path))
        body = self._body()
        if not self._authorized():
            return
        if parts[:1] != ["v1"]:
            return self._error(404, f"unknown path {url.path}")
        parts = parts[1:]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            route = {
                ("POST", "files"): self._upload,
                ("GET", "files"): self._get_file,
                ("DELETE", "files"): self._delete_file,
                ("POST", "fine_tuning"): self._jobs_post,
                ("GET", "fine_tuning"): self._jobs_get,
                ("GET", "models"): self._models,
                ("POST", "chat"): self._chat,
                ("POST", "tokenize"): self._tokenize,
            }.get((method, parts[0] if parts else ""))
            if route is None:
                return self._error(404, f"unknown route {method} {url.path}")
            route(parts, query, body)
        except (ValueError, KeyError) as exc:
            self._error(400, f"bad request: {exc}")

    # ---- files
    def _upload(self, parts, query, body):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        fields, content, filename = {}, None, "upload.jsonl"
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                content = part.get_payload(decode=True)
                filename = part.get_filename() or filename
            else:
                fields[name] = part.get_content().strip()
        if content is None:
            return self._error(400, "missing file")
        lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        if not lines or any("messages" not in obj for obj in lines):
            return self._error(400, "file must be JSONL with a 'messages' list per line",
                               "invalid_file_format")
        with self.fake._lock:
            file_id = self.fake._new_id("file")
            meta = {"id": file_id, "object": "file", "bytes": len(content),
                    "created_at": int(time.time()), "filename": filename,
                    "purpose": fields.get("purpose", "fine-tune"), "status": "processed"}
            self.fake.files[file_id] = meta
            self.fake.file_data[file_id] = content
        self._send(200, meta)

    def _get_file(self, parts, query, body):
        if len(parts) == 1:                     # GET /v1/files: newest first, like OpenAI
            files = [m for m in reversed(list(self.fake.files.values()))
                     if query.get("purpose") in (None, m["purpose"])]
            return self._send(200, {"object": "list", "data": files, "has_more": False})
        meta = self.fake.files.get(parts[1]) if len(parts) > 1 else None
        if meta is None:
            return self._error(404, "No such file", "not_found")
        self._send(200, meta)

    def _delete_file(self, parts, query, body):
        with self.fake._lock:
            meta = self.fake.files.pop(parts[1], None) if len(parts) > 1 else None
            self.fake.file_data.pop(parts[1] if len(parts) > 1 else "", None)
        if meta is None:
            return self._error(404, "No such file", "not_found")
        self._send(200, {"id": meta["id"], "object": "file", "deleted": True})

    # ---- fine-tuning jobs
    def _jobs_post(self, parts, query, body):
        if parts[1:2] != ["jobs"]:
            return self._error(404, "unknown route")
        if len(parts) == 2:
            return self._create_job(json.loads(body))
        if len(parts) == 4 and parts[3] == "cancel":
            job = self.fake.jobs.get(parts[2])
            if job is None:
                return self._error(404, f"No fine-tuning job {parts[2]}", "not_found")
            status = self.fake._status(job, time.time())[0]
            if status in ("succeeded", "failed", "cancelled"):
                return self._error(400, f"Job is already {status}", "invalid_state")
            job.cancelled_at = time.time()
            return self._send(200, self.fake.job_object(job))
        self._error(404, "unknown route")

    def _create_job(self, req: dict):
        fake = self.fake
        if req.get("training_file") not in fake.files:
            return self._error(400, f"training file {req.get('training_file')!r} not found",
                               "invalid_training_file")
        model = req.get("model")
        if model not in fake.base_models and not str(model).startswith("ft:"):
            return self._error(404, f"The model {model!r} does not exist", "model_not_found")
        data = fake.file_data[req["training_file"]].decode()
        conversations = [json.loads(line)["messages"] for line in data.splitlines() if line]
        with fake._lock:
            job = FakeJob(
                id=fake._new_id("ftjob"), model=model, training_file=req["training_file"],
                validation_file=req.get("validation_file"), suffix=req.get("suffix"),
                hyperparameters=dict(req.get("hyperparameters") or {}),
                script=fake.model_scripts.get(model, fake.default_script),
                created=time.time(),
                trained_tokens_per_epoch=sum(count_words(c) for c in conversations))
            fake.jobs[job.id] = job
        self._send(200, fake.job_object(job))

    def _jobs_get(self, parts, query, body):
        fake = self.fake
        if parts[1:2] != ["jobs"]:
            return self._error(404, "unknown route")
        if len(parts) == 2:
            jobs = sorted(fake.jobs.values(), key=lambda j: j.created, reverse=True)
            limit = int(query.get("limit", 20))
            data = [fake.job_object(j) for j in jobs[:limit]]
            return self._send(200, {"object": "list", "data": data,
                                    "has_more": len(jobs) > limit})
        job = fake.jobs.get(parts[2])
        if job is None:
            return self._error(404, f"No fine-tuning job {parts[2]}", "not_found")
        if len(parts) == 3:
            return self._send(200, fake.job_object(job))
        if parts[3] == "events":
            events = fake.job_events(job)[::-1]           # newest first, like OpenAI
            after = query.get("after")
            if after:
                ids = [e["id"] for e in events]
                events = events[ids.index(after) + 1:] if after in ids else []
            limit = int(query.get("limit", 20))
            return self._send(200, {"object": "list", "data": events[:limit],
                                    "has_more": len(events) > limit})
        self._error(404, "unknown route")

    # ---- models and inference
    def _models(self, parts, query, body):
        fake = self.fake
        ids = list(fake.base_models)
        ids += [fake.fine_tuned_id(j) for j in fake.jobs.values()
                if fake._status(j, time.time())[0] == "succeeded"]
        self._send(200, {"object": "list", "data": [
            {"id": i, "object": "model", "created": 0, "owned_by": "fake"} for i in ids]})

    def _known_model(self, model: str) -> bool:
        fake = self.fake
        return model in fake.base_models or any(
            fake.fine_tuned_id(j) == model and fake._status(j, time.time())[0] == "succeeded"
            for j in fake.jobs.values())

    def _chat(self, parts, query, body):
        req = json.loads(body)
        model = req.get("model")
        if not self._known_model(model):
            return self._error(404, f"The model {model!r} does not exist", "model_not_found")
        user = [m for m in req.get("messages", []) if m.get("role") == "user"]
        text = f"[{model}] {user[-1]['content'] if user else ''}"
        prompt_tokens = count_words(req.get("messages", []))
        self._send(200, {
            "id": self.fake._new_id("chatcmpl"), "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                      "total_tokens": prompt_tokens + len(text.split())}})

    def _tokenize(self, parts, query, body):
        if not self.fake.tokenize:
            return self._error(404, "unknown route POST /v1/tokenize")
        req = json.loads(body)
        messages = req.get("messages") or [{"content": req.get("text", "")}]
        count = count_words(messages)
        self._send(200, {"model": req.get("model"), "count": count, "tokens": []})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

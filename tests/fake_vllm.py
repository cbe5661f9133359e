"""A real loopback server speaking vLLM's OpenAI API with runtime LoRA adapters, as vLLM
documents and implements it (vllm/entrypoints/openai/serving_models.py; the server runs
with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True):

    POST /v1/load_lora_adapter {"lora_name", "lora_path"}
        200 text "Success: LoRA adapter '<name>' added successfully."
        400 InvalidUserInput "Both 'lora_name' and 'lora_path' must be provided."
        400 InvalidUserInput "The lora adapter '<name>' has already been loaded."
        404 NotFoundError    "Loading lora <name> failed: No adapter found for <path>"
    POST /v1/unload_lora_adapter {"lora_name"}
        200 text "Success: LoRA adapter '<name>' removed successfully."
        404 NotFoundError    "The lora adapter '<name>' cannot be found."
    GET /v1/models   the base (root = its checkpoint) and each adapter (root = its path,
                     parent = the base)
    POST /v1/chat/completions  for the base and every loaded adapter name; answers
                     "<model>|echo:<prompt>" so a test sees which adapter answered.

Errors are {"error": {"message", "type", "param", "code"}}. An adapter path "loads" when it
is a directory holding adapter_config.json, as vLLM requires. ``runtime_lora=False`` is a
server started without the variable: no such routes (FastAPI's 404 {"detail": "Not Found"}).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fake_openai import FakeOpenAI, _Handler, echo_answer


def _tagged_answer(messages, body) -> str:
    return f"{body.get('model')}|{echo_answer(messages, body)}"


class FakeVLLM(FakeOpenAI):
    def __init__(self, base_model: str, *, root: str = "/models/base", api_key=None,
                 runtime_lora: bool = True):
        super().__init__(models=[base_model], api_key=api_key, answer=_tagged_answer)
        self.base_model = base_model
        self.root = root
        self.runtime_lora = runtime_lora
        self.adapters: dict[str, str] = {}  # lora_name -> lora_path, in load order
        self.list_adapters = True  # False: /v1/models shows the base only

    def lora_requests(self):
        with self._lock:
            return [r for r in self.requests if "lora_adapter" in r.path]

    def start(self) -> "FakeVLLM":
        super().start()
        self._server.RequestHandlerClass = type("VLLMHandler", (_VLLMHandler,), {"fake": self})
        return self


class _VLLMHandler(_Handler):
    fake: FakeVLLM

    def _vllm_error(self, status: int, message: str, err_type: str) -> None:
        self._send(status, {"error": {"message": message, "type": err_type, "param": None,
                                      "code": status}})

    def _text(self, text: str) -> None:
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            return super().do_GET()
        self._record(None)
        if not self._authorized():
            return
        fake, now = self.fake, int(time.time())
        cards = [{"id": fake.base_model, "object": "model", "created": now, "owned_by": "vllm",
                  "root": fake.root, "parent": None, "max_model_len": 8192,
                  "permission": [{"object": "model_permission"}]}]
        cards += [{"id": name, "object": "model", "created": now, "owned_by": "vllm",
                   "root": path, "parent": fake.base_model, "max_model_len": None,
                   "permission": [{"object": "model_permission"}]}
                  for name, path in fake.adapters.items() if fake.list_adapters]
        self._send(200, {"object": "list", "data": cards})

    def do_POST(self) -> None:
        route = self.path.rstrip("/")
        if route not in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
            return super().do_POST()
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._record(body)
        if not self.fake.runtime_lora:
            self._send(404, {"detail": "Not Found"})
            return
        if not self._authorized():
            return
        fake, name = self.fake, body.get("lora_name")
        with fake._lock:
            if route == "/v1/load_lora_adapter":
                path = body.get("lora_path")
                if not name or not path:
                    return self._vllm_error(400, "Both 'lora_name' and 'lora_path' must be "
                                                 "provided.", "InvalidUserInput")
                if name in fake.adapters:
                    return self._vllm_error(400, f"The lora adapter '{name}' has already been "
                                                 "loaded.", "InvalidUserInput")
                if not (Path(path) / "adapter_config.json").is_file():
                    return self._vllm_error(404, f"Loading lora {name} failed: No adapter found "
                                                 f"for {path}", "NotFoundError")
                fake.adapters[name] = path
                fake.models.append(name)
                return self._text(f"Success: LoRA adapter '{name}' added successfully.")
            if not name:
                return self._vllm_error(400, "either 'lora_name' and 'lora_int_id' needs to be "
                                             "provided.", "InvalidUserInput")
            if name not in fake.adapters:
                return self._vllm_error(404, f"The lora adapter '{name}' cannot be found.",
                                        "NotFoundError")
            del fake.adapters[name]
            fake.models.remove(name)
            return self._text(f"Success: LoRA adapter '{name}' removed successfully.")


class FakeLocalEngine(FakeOpenAI):
    """pg-llm serve as llm_deploy_version sees it: fine-tuned model cards name their PEFT
    adapter directory (pg_llm.serve.registry)."""

    def __init__(self, models, *, adapters: dict[str, str], api_key=None):
        super().__init__(models=models, api_key=api_key)
        self.adapters = adapters

    def start(self) -> "FakeLocalEngine":
        super().start()
        self._server.RequestHandlerClass = type("LocalHandler", (_LocalHandler,), {"fake": self})
        return self


class _LocalHandler(_Handler):
    fake: FakeLocalEngine

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            return super().do_GET()
        self._record(None)
        if not self._authorized():
            return
        cards = []
        for model in self.fake.models:
            card = {"id": model, "object": "model", "created": 0, "owned_by": "pg_llm"}
            if model in self.fake.adapters:
                card["adapter"] = {"format": "peft", "path": self.fake.adapters[model],
                                   "base_model": self.fake.models[0]}
            cards.append(card)
        self._send(200, {"object": "list", "data": cards})

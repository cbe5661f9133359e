"""Bodies of llm_deploy_version and llm_undeploy_version (docs/scale-out.md).

A version is served by its model's engine unless llm.deployments names another one. Deploying
version N >= 2 loads its PEFT adapter on the target engine under the version's provider
model id (unique: it ends in the job id) through the runtime LoRA API (pg_llm.engines.lora);
version 1 is the base model the target must already serve. All adapters of a model share the
target's one base-model deployment, which is why that base must be served under the model's
``base_model`` name (vLLM: --served-model-name).
"""

from __future__ import annotations

from pg_llm.api.engines import require_catalog_write, require_engine
from pg_llm.api.undeploy import engine_settings, release
from pg_llm.api.versions import _live_version, _model
from pg_llm.catalog import deployments
from pg_llm.catalog import models as model_catalog
from pg_llm.engines import lora
from pg_llm.engines.client import backend_interrupt_checker, list_model_cards
from pg_llm.errors import (InsufficientPrivilege, InvalidParameter, JobStateError, LlmError,
                           UndefinedObject)

ADAPTER_HINT = ("pass adapter_path => '<dir>', a PEFT adapter directory (adapter_config.json, "
                "adapter_model.safetensors) that the target engine's process can read")


def _require_usage(plpy, engine: str) -> None:
    ok = plpy.execute(plpy.prepare("SELECT has_server_privilege($1, 'USAGE') AS ok", ["text"]),
                      [engine])[0]["ok"]
    if not ok:
        user = plpy.execute("SELECT quote_ident(current_user) AS u")[0]["u"]
        raise InsufficientPrivilege(f'permission denied for engine "{engine}"',
                                    detail="deploying a version sends its model's prompts to "
                                           "that engine",
                                    hint=f"its owner can run: GRANT USAGE ON FOREIGN SERVER "
                                         f"{engine} TO {user};")


def _check_path(adapter_path):
    if adapter_path is None:
        return None
    if not isinstance(adapter_path, str) or not adapter_path.strip() or \
            any(ord(c) < 32 for c in adapter_path):
        raise InvalidParameter("adapter_path must be a non-empty path or URL", hint=ADAPTER_HINT)
    return adapter_path


def _adapter_from_source(plpy, model: dict, version: int, model_id: str, poll) -> str:
    """The PEFT directory the model's own engine (pg-llm serve) reports for a version."""
    cards = {c["id"]: c for c in list_model_cards(engine_settings(plpy, model["engine"]), poll)}
    card = cards.get(model_id)
    if card is None:
        raise UndefinedObject(f'engine "{model["engine"]}" no longer serves version {version} '
                              f'of model "{model["name"]}" ({model_id})', hint=ADAPTER_HINT)
    adapter = card.get("adapter")
    if not isinstance(adapter, dict) or not isinstance(adapter.get("path"), str):
        raise JobStateError(f'engine "{model["engine"]}" does not say where the adapter of '
                            f'version {version} of model "{model["name"]}" is',
                            detail="pg-llm serve reports it in GET /v1/models/{id} as "
                                   "\"adapter\"; other engines do not",
                            hint=ADAPTER_HINT)
    return adapter["path"]


def deploy_version(plpy, model, version, engine, adapter_path=None):
    row = _model(plpy, model)
    target = require_engine(plpy, engine)["name"]
    version_row = _live_version(plpy, row["name"], version)
    adapter_path = _check_path(adapter_path)
    require_catalog_write(plpy, "llm.deployments")
    _require_usage(plpy, target)
    if target == row["engine"]:
        raise InvalidParameter(f'version {version} of model "{model}" is served by its own '
                               f'engine "{target}" already',
                               hint=f"to serve it there again after a deployment elsewhere: "
                                    f"SELECT llm_undeploy_version('{model}', {version})")
    poll = backend_interrupt_checker()
    settings = engine_settings(plpy, target)
    served = lora.served_models(settings, poll)
    base = row["base_model"]
    if base not in served:
        raise JobStateError(f'engine "{target}" does not serve the base model "{base}" of '
                            f'model "{model}"',
                            detail="it serves: " + (", ".join(sorted(served)) or "nothing"),
                            hint=f"serve the base under that name, e.g. python -m vllm.entrypoints"
                                 f".openai.api_server --model <HF dir> --served-model-name {base}"
                                 f" --enable-lora (docs/scale-out.md)")
    if version == 1:
        served_model, adapter_path = base, None
    else:
        served_model = version_row["provider_model_id"]
        adapter_path = adapter_path or _adapter_from_source(plpy, row, version, served_model, poll)
        card = served.get(served_model)
        if card is None:
            lora.load_adapter(settings, served_model, adapter_path, poll)
        elif card.get("root") not in (None, adapter_path):
            raise LlmError(f'engine "{target}" serves another adapter named "{served_model}"',
                           sqlstate="42710", detail=f"loaded from {card.get('root')}",
                           hint="unload it there (POST /v1/unload_lora_adapter) or deploy "
                                "from the same path")
        # else: loaded already (an earlier deployment, or another database): shared
    previous = deployments.get(plpy, row["name"], version)
    deployments.record(plpy, row["name"], version, target, served_model, adapter_path)
    if previous and previous["engine"] != target:
        release(plpy, previous)
    model_catalog.sync_table_options(plpy, row["name"])
    return served_model


def undeploy_version(plpy, model, version):
    row = _model(plpy, model)
    if version is None or isinstance(version, bool) or not isinstance(version, int):
        raise InvalidParameter("version must be a version number",
                               hint="see SELECT * FROM llm.deployments")
    require_catalog_write(plpy, "llm.deployments")
    deployment = deployments.get(plpy, row["name"], version)
    if deployment is None:
        raise UndefinedObject(f'version {version} of model "{model}" is not deployed on another '
                              f'engine', hint=f"it is served by its model's engine "
                                              f"\"{row['engine']}\"; see llm.deployments")
    deployments.remove(plpy, row["name"], version)
    release(plpy, deployment)
    model_catalog.sync_table_options(plpy, row["name"])
    return deployment["engine"]

"""What ending a deployment takes (docs/scale-out.md): unloading a version's adapter from the
engine that served it, and what dropping an engine or a version does to the versions deployed
there. Called by llm_undeploy_version and llm_deploy_version (pg_llm.api.deployments) and by
llm_drop_engine and llm_drop_version (pg_llm.api.engines, pg_llm.api.versions), so it imports
none of them.
"""

from __future__ import annotations

from pg_llm.catalog import deployments
from pg_llm.catalog import jobs as job_catalog
from pg_llm.catalog import models as model_catalog
from pg_llm.engines import lora, settings_from_options
from pg_llm.engines.client import backend_interrupt_checker
from pg_llm.errors import LlmError


def engine_settings(plpy, engine: str):
    return settings_from_options(job_catalog.engine_options(plpy, engine), engine=engine)


def release(plpy, deployment: dict) -> None:
    """Unload a deployment's adapter unless another deployment still uses it."""
    if deployment["adapter_path"] is None or deployments.others_serving(
            plpy, deployment["engine"], deployment["served_model"], deployment["model"],
            deployment["version"]):
        return
    if model_catalog.get_engine(plpy, deployment["engine"]) is None:
        return  # the engine is gone, and its adapters with it
    lora.unload_adapter(engine_settings(plpy, deployment["engine"]), deployment["served_model"],
                        backend_interrupt_checker())


def engine_dropped(plpy, engine: str, cascade: bool) -> None:
    """llm_drop_engine: the versions deployed on it block the drop, or (cascade) are served by
    their models' own engines again (the engine's adapters go with the engine)."""
    served = deployments.on_engine(plpy, engine)
    if served and not cascade:
        listed = ", ".join(f"{d['model']} version {d['version']}" for d in served)
        raise LlmError(f'engine "{engine}" serves deployed versions: {listed}',
                       sqlstate="2BP01",  # dependent_objects_still_exist
                       hint=f"SELECT llm_undeploy_version(model, version) for each, or "
                            f"SELECT llm_drop_engine('{engine}', cascade => true)")
    for deployment in served:
        deployments.remove(plpy, deployment["model"], deployment["version"])
        model_catalog.sync_table_options(plpy, deployment["model"])


def version_dropped(plpy, model: str, version: int) -> None:
    """llm_drop_version: a dropped version is served nowhere, so its adapter is unloaded."""
    deployment = deployments.get(plpy, model, version)
    if deployment is not None:
        deployments.remove(plpy, model, version)
        release(plpy, deployment)

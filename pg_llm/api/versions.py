"""Bodies of llm_set_active_version, llm_rollback and llm_drop_version (SQL functions over
one plpython function, llm._model_version, which calls change()).

Version rows are written by pg_llm.catalog.models (which keeps the foreign table's
`versions`/`active_version` options in sync); the history of activations, used by rollback,
lives in llm.activations (pg_llm.catalog.jobs).
"""

from __future__ import annotations

from pg_llm.api.engines import require_catalog_write
from pg_llm.api.models import require_model
from pg_llm.api.undeploy import version_dropped
from pg_llm.catalog import jobs as job_catalog
from pg_llm.catalog import models as model_catalog
from pg_llm.errors import InvalidParameter, JobStateError, UndefinedObject


def _model(plpy, model) -> dict:
    row = require_model(plpy, model)
    require_catalog_write(plpy, "llm.models", "llm.model_versions", "llm.activations")
    return row


def _live_version(plpy, model: str, version) -> dict:
    if version is None or isinstance(version, bool) or not isinstance(version, int):
        raise InvalidParameter("version must be a version number",
                               hint=f"see SELECT version FROM llm.model_versions "
                                    f"WHERE model = '{model}'")
    row = model_catalog.get_version(plpy, model, version)
    live = ", ".join(str(v) for v in model_catalog.live_versions(plpy, model))
    if row is None:
        raise UndefinedObject(f'model "{model}" has no version {version}',
                              hint=f"available versions: {live}")
    if row["dropped_at"] is not None:
        raise JobStateError(f'version {version} of model "{model}" was dropped',
                            detail=f"dropped at {row['dropped_at']}",
                            hint=f"available versions: {live}")
    return row


def set_active_version(plpy, model, version, reason="llm_set_active_version"):
    row = _model(plpy, model)
    _live_version(plpy, model, version)
    if row["active_version"] != version:
        model_catalog.set_active_version(plpy, model, version)
        job_catalog.record_activation(plpy, model, version, reason)
    return version


def rollback(plpy, model):
    """Back to the version that was active before the current one (skipping dropped ones)."""
    row = _model(plpy, model)
    current = row["active_version"]
    live = model_catalog.live_versions(plpy, model)
    # Version 1 was active before any recorded activation.
    for version in job_catalog.activation_history(plpy, model) + [1]:
        if version != current and version in live:
            set_active_version(plpy, model, version, reason=f"llm_rollback from {current}")
            return version
    raise JobStateError(f'model "{model}" has no earlier version to roll back to',
                        detail=f"active version: {current}",
                        hint="llm_set_active_version(model, n) activates any live version")


def drop_version(plpy, model, version):
    row = _model(plpy, model)
    _live_version(plpy, model, version)
    if version == 1:
        raise JobStateError(f'version 1 of model "{model}" is its base model and cannot be '
                            "dropped", hint=f"to remove the model entirely use "
                                            f"llm_drop_model('{model}')")
    if version == row["active_version"]:
        raise JobStateError(f'version {version} of model "{model}" is active',
                            hint=f"activate another version first: SELECT llm_rollback('{model}')"
                                 f" or llm_set_active_version('{model}', n)")
    version_dropped(plpy, model, version)  # unloaded where llm_deploy_version put it
    model_catalog.mark_version_dropped(plpy, model, version)


def change(plpy, action, model, version):
    """llm._model_version(action, model, version): the one entry of the three SQL functions."""
    if action == "set_active_version":
        return set_active_version(plpy, model, version)
    if action == "rollback":
        return rollback(plpy, model)
    if action == "drop_version":
        return drop_version(plpy, model, version)
    raise InvalidParameter(f'unknown version action "{action}"',
                           hint="use llm_set_active_version, llm_rollback or llm_drop_version")

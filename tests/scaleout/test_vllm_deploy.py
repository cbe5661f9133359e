"""Versions that travel (docs/scale-out.md): llm_deploy_version loads a version's PEFT adapter
on a vLLM engine through its runtime LoRA API, records it in llm.deployments, and the same
foreign table answers `version = N` from there; rollback and undeploy work the same way.
Real loopback servers: tests/fake_vllm.py speaks vLLM's endpoints and errors."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from fake_vllm import FakeLocalEngine, FakeVLLM

BASE = "smollm2-135m-instruct"
TUNED = "ft:smollm2-135m-instruct:ft_sql:ftjob-0123456789abcdef"
LOCAL_KEY = "sk-local-key-1111"
GPU_KEY = "sk-gpu-key-2222"


@pytest.fixture
def adapter_dir(tmp_path):
    path = tmp_path / "jobs" / "ftjob-0123456789abcdef" / "adapter"
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 16}))
    (path / "adapter_model.safetensors").write_bytes(b"\0" * 8)
    return str(path)


@pytest.fixture
def local(adapter_dir):
    with FakeLocalEngine([BASE, TUNED], adapters={TUNED: adapter_dir}, api_key=LOCAL_KEY) as s:
        yield s


@pytest.fixture
def gpu():
    with FakeVLLM(BASE, api_key=GPU_KEY) as server:
        yield server


@pytest.fixture
def ft_sql(db, local, gpu):
    """The tutorial's model on the local engine, version 2 fine-tuned there, and a vLLM
    engine `gpu` serving the same base model."""
    db.execute("SELECT llm_create_engine('local', provider => 'local', base_url => %s, "
               "api_key => %s)", (local.url, LOCAL_KEY))
    db.execute("SELECT llm_create_engine('gpu', provider => 'vllm', base_url => %s, "
               "api_key => %s)", (gpu.url, GPU_KEY))
    db.execute("SELECT llm_create_model('ft_sql', engine => 'local', model_name => %s, "
               "prompt_template => '{{content}}')", (BASE,))
    db.execute("INSERT INTO llm.model_versions (model, version, provider_model_id) "
               "VALUES ('ft_sql', 2, %s)", (TUNED,))
    db.execute("SELECT llm_set_active_version('ft_sql', 1)")  # syncs the table's versions
    local.reset()
    gpu.reset()
    return "ft_sql"


def ask(conn, version=None):
    where = "" if version is None else f" AND version = {version}"
    return conn.execute(f"SELECT answer, model_id FROM ft_sql WHERE content = 'hi'{where}"
                        ).fetchone()


def sql_error(conn, sql, *args):
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, args or None)
    return info.value


def test_deploy_serves_the_version_from_vllm_until_undeployed(db, ft_sql, local, gpu,
                                                              adapter_dir):
    served = db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')").fetchone()[0]
    assert served == TUNED
    assert gpu.adapters == {TUNED: adapter_dir}  # loaded from the path the local engine gave
    load = gpu.lora_requests()[0]
    assert load.body == {"lora_name": TUNED, "lora_path": adapter_dir}
    assert load.authorization == f"Bearer {GPU_KEY}"
    assert db.execute("SELECT model, version, engine, served_model, adapter_path "
                      "FROM llm.deployments").fetchall() == [("ft_sql", 2, "gpu", TUNED,
                                                              adapter_dir)]

    assert ask(db, 2) == (f"{TUNED}|echo:hi", TUNED)
    assert gpu.chat_requests()[-1].authorization == f"Bearer {GPU_KEY}"
    assert ask(db, 1) == ("echo:hi", BASE)  # version 1 still from the local engine
    assert len(local.chat_requests()) == 1
    # both versions in one statement: each from its own engine
    rows = db.execute("SELECT version, answer FROM ft_sql WHERE content = 'x' "
                      "AND version = ANY('{1,2}') ORDER BY version").fetchall()
    assert rows == [(1, "echo:x"), (2, f"{TUNED}|echo:x")]

    # activation and rollback pick the engine with the version
    db.execute("SELECT llm_set_active_version('ft_sql', 2)")
    assert ask(db) == (f"{TUNED}|echo:hi", TUNED)
    assert db.execute("SELECT llm_rollback('ft_sql')").fetchone() == (1,)
    assert ask(db) == ("echo:hi", BASE)

    assert db.execute("SELECT llm_undeploy_version('ft_sql', 2)").fetchone() == ("gpu",)
    assert gpu.adapters == {}
    assert gpu.lora_requests()[-1].body == {"lora_name": TUNED}
    assert db.execute("SELECT count(*) FROM llm.deployments").fetchone() == (0,)
    before = len(gpu.chat_requests())
    assert ask(db, 2) == ("echo:hi", TUNED)  # the local engine serves it again
    assert len(gpu.chat_requests()) == before


def test_an_ordinary_role_asks_the_deployed_version(db, dsn, ft_sql, gpu):
    db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
    role = f"reader_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN IN ROLE llm_user")
    db.execute(f"GRANT SELECT ON ft_sql TO {role}")
    info = db.info
    try:
        with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=role,
                             autocommit=True) as conn:
            # no USAGE on either engine: SELECT on the model is enough, as for its own engine
            assert ask(conn, 2) == (f"{TUNED}|echo:hi", TUNED)
            assert conn.execute("SELECT engine, served_model FROM llm.deployments"
                                ).fetchall() == [("gpu", TUNED)]
            err = sql_error(conn, "SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
            assert err.sqlstate == "42501"
            err = sql_error(conn, "SELECT llm_undeploy_version('ft_sql', 2)")
            assert err.sqlstate == "42501"
    finally:
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")


def test_a_role_key_for_the_vllm_engine_is_used_for_that_role(db, ft_sql, gpu):
    """The scanning role's own user mapping on the deployed engine wins over PUBLIC's."""
    db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
    role = f"reader_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f"GRANT SELECT ON ft_sql TO {role}")
    db.execute(f"CREATE USER MAPPING FOR {role} SERVER gpu OPTIONS (api_key 'sk-role-3333')")
    gpu.api_key = None  # accept any key, record which one came
    info = db.info
    try:
        with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=role,
                             autocommit=True) as conn:
            ask(conn, 2)
        assert gpu.chat_requests()[-1].authorization == "Bearer sk-role-3333"
        ask(db, 2)
        assert gpu.chat_requests()[-1].authorization == f"Bearer {GPU_KEY}"
    finally:
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")


def test_adapters_share_one_base_and_deploying_again_loads_nothing(db, ft_sql, gpu, local,
                                                                  tmp_path):
    assert db.execute("SELECT llm_deploy_version('ft_sql', 1, engine => 'gpu')"
                      ).fetchone() == (BASE,)
    assert db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')"
                      ).fetchone() == (TUNED,)
    assert db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')"
                      ).fetchone() == (TUNED,)
    assert len([r for r in gpu.lora_requests() if r.path.endswith("/load_lora_adapter")]) == 1
    assert ask(db, 1) == (f"{BASE}|echo:hi", BASE)  # the base deployment itself
    assert ask(db, 2) == (f"{TUNED}|echo:hi", TUNED)
    assert local.chat_requests() == []
    options = dict(o.split("=", 1) for o in db.execute(
        "SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'ft_sql'::regclass"
    ).fetchone()[0])
    assert json.loads(options["deployments"]) == {
        "1": {"engine": "gpu", "model": BASE}, "2": {"engine": "gpu", "model": TUNED}}
    # undeploying the base loads nothing off the engine (it is the engine's own model)
    db.execute("SELECT llm_undeploy_version('ft_sql', 1)")
    assert gpu.adapters == {TUNED: gpu.adapters[TUNED]}


def test_deploy_errors(db, ft_sql, gpu, local, tmp_path, adapter_dir):
    err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 2, engine => 'nope')")
    assert err.sqlstate == "42704" and "known engines" in err.diag.message_hint
    err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 3, engine => 'gpu')")
    assert err.sqlstate == "42704" and "available versions: 1, 2" in err.diag.message_hint
    err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 2, engine => 'local')")
    assert err.sqlstate == "22023"

    # the adapter path must exist where the engine runs: vLLM's 404 "No adapter found"
    err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu', "
                        "adapter_path => %s)", str(tmp_path / "missing"))
    assert err.sqlstate == "42704" and "No adapter found" in err.diag.message_detail
    assert gpu.adapters == {}

    # another adapter under the same name on the engine
    gpu.adapters[TUNED] = "/elsewhere"
    gpu.models.append(TUNED)
    err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
    assert err.sqlstate == "42710" and "/elsewhere" in err.diag.message_detail
    gpu.adapters.clear()
    gpu.models.remove(TUNED)

    # vLLM's 400 "already been loaded": an adapter /v1/models does not show
    gpu.adapters[TUNED] = adapter_dir
    gpu.list_adapters = False
    err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
    assert err.sqlstate == "42710" and "has already been loaded" in err.diag.message_detail
    assert db.execute("SELECT count(*) FROM llm.deployments").fetchone() == (0,)


def test_engines_that_cannot_take_the_version(db, ft_sql, local, adapter_dir):
    with FakeVLLM("another-base") as other, FakeVLLM(BASE, runtime_lora=False) as static:
        db.execute("SELECT llm_create_engine('other', provider => 'vllm', base_url => %s)",
                   (other.url,))
        err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 2, engine => 'other')")
        assert err.sqlstate == "55000"
        assert "another-base" in err.diag.message_detail
        assert "--served-model-name smollm2-135m-instruct" in err.diag.message_hint
        db.execute("SELECT llm_create_engine('static', provider => 'vllm', base_url => %s)",
                   (static.url,))
        err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 2, engine => 'static')")
        assert err.sqlstate == "HV000"
        assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in err.diag.message_hint
    assert db.execute("SELECT count(*) FROM llm.deployments").fetchone() == (0,)

    # a source engine that does not report adapters: the path must be given
    local.adapters.clear()
    with FakeVLLM(BASE) as gpu2:
        db.execute("SELECT llm_create_engine('gpu2', provider => 'vllm', base_url => %s)",
                   (gpu2.url,))
        err = sql_error(db, "SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu2')")
        assert err.sqlstate == "55000" and "adapter_path" in err.diag.message_hint
        db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu2', "
                   "adapter_path => %s)", (adapter_dir,))
        assert gpu2.adapters == {TUNED: adapter_dir}


def test_undeploy_errors_and_an_engine_that_lost_the_adapter(db, ft_sql, gpu):
    err = sql_error(db, "SELECT llm_undeploy_version('ft_sql', 2)")
    assert err.sqlstate == "42704" and "local" in err.diag.message_hint
    db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
    gpu.adapters.clear()  # vLLM restarted: its 404 "cannot be found" is not an error here
    gpu.models.remove(TUNED)
    assert db.execute("SELECT llm_undeploy_version('ft_sql', 2)").fetchone() == ("gpu",)
    assert gpu.lora_requests()[-1].path.endswith("/unload_lora_adapter")


def test_pg_dump_round_trip_keeps_the_deployment(db, ft_sql, gpu, tmp_path):
    import subprocess

    from core.test_dump_restore import BINDIR

    db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
    info = db.info
    dump = tmp_path / "db.dump"
    conn_args = ["-h", info.host, "-p", str(info.port), "-U", "postgres"]
    subprocess.run([BINDIR / "pg_dump", *conn_args, "-Fc", "-f", dump, info.dbname], check=True)
    target = f"restored_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE DATABASE {target}")
    try:
        restore = subprocess.run([BINDIR / "pg_restore", *conn_args, "--exit-on-error", "-d",
                                  target, dump], capture_output=True, text=True)
        assert restore.returncode == 0, restore.stderr
        with psycopg.connect(host=info.host, port=info.port, user="postgres", dbname=target,
                             autocommit=True) as restored:
            assert restored.execute("SELECT model, version, engine, served_model "
                                    "FROM llm.deployments").fetchall() == [("ft_sql", 2, "gpu", TUNED)]
            assert ask(restored, 2) == (f"{TUNED}|echo:hi", TUNED)
    finally:
        db.execute(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")


def test_dropping_the_engine_of_a_deployment(db, ft_sql, gpu):
    db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
    err = sql_error(db, "SELECT llm_drop_engine('gpu')")
    assert err.sqlstate == "2BP01" and "ft_sql version 2" in err.diag.message_primary
    assert "llm_undeploy_version" in err.diag.message_hint
    db.execute("SELECT llm_drop_engine('gpu', cascade => true)")
    assert db.execute("SELECT count(*) FROM llm.deployments").fetchone() == (0,)
    assert ask(db, 2) == ("echo:hi", TUNED)  # the model's own engine serves it again


def test_dropping_a_deployed_version_unloads_it(db, ft_sql, gpu):
    db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
    db.execute("SELECT llm_drop_version('ft_sql', 2)")
    assert gpu.adapters == {}
    assert db.execute("SELECT count(*) FROM llm.deployments").fetchone() == (0,)
    err = sql_error(db, "SELECT answer FROM ft_sql WHERE content = 'hi' AND version = 2")
    assert err.sqlstate == "42704"

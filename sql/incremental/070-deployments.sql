-- 0.2.0: where a version is served when another engine than the model's own serves it
-- (llm_deploy_version: a LoRA adapter loaded on a vLLM engine, docs/scale-out.md).
CREATE TABLE llm.deployments (
    model        text NOT NULL,
    version      integer NOT NULL,
    engine       text NOT NULL,              -- the foreign server that answers this version
    served_model text NOT NULL,              -- the model name that engine answers to
    adapter_path text,                       -- the PEFT directory loaded there (NULL: base)
    deployed_by  name NOT NULL DEFAULT current_user,
    deployed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, version),
    FOREIGN KEY (model, version) REFERENCES llm.model_versions (model, version)
        ON DELETE CASCADE
);
CREATE INDEX deployments_engine_idx ON llm.deployments (engine);
SELECT pg_catalog.pg_extension_config_dump('llm.deployments', '');

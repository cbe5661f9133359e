-- 0.2.0: inference spend in the ledger (pg_llm.spending): one 'inference' row per scan of a
-- model on a priced engine, with the role it ran for; budgets may cap a role.
ALTER TABLE llm.ledger ADD COLUMN role name;
ALTER TABLE llm.ledger DROP CONSTRAINT IF EXISTS ledger_kind_check;
ALTER TABLE llm.ledger ADD CONSTRAINT ledger_kind_check
    CHECK (kind IN ('estimate', 'release', 'actual', 'inference'));
CREATE INDEX ledger_inference_idx ON llm.ledger (role, model, created_at)
    WHERE kind = 'inference';
ALTER TABLE llm.budgets DROP CONSTRAINT IF EXISTS budgets_scope_check;
ALTER TABLE llm.budgets ADD CONSTRAINT budgets_scope_check
    CHECK (scope IN ('engine', 'model', 'role'));

-- Keys and passwords go into user mappings without ever being SQL text (docs/security.md,
-- point 9): llm._set_user_mapping_option builds the CREATE/ALTER USER MAPPING as a parse node
-- (ext/user_mappings.c), so pg_stat_statements, event triggers and debug logging never see
-- the value. It checks privileges exactly as that DDL does, so PUBLIC may call it.
CREATE OR REPLACE FUNCTION llm._set_user_mapping_option(server name, role name, option text,
                                                        value text)
RETURNS void
AS 'MODULE_PATHNAME', 'pg_llm_set_user_mapping_option' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION llm._set_user_mapping_option(name, name, text, text) IS
'Set (value NULL: drop) one option of the user mapping of role (NULL: PUBLIC) on server, without SQL text; same privilege checks as ALTER USER MAPPING';
GRANT EXECUTE ON FUNCTION llm._set_user_mapping_option(name, name, text, text) TO PUBLIC;

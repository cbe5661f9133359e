-- Runs once when the container initialises its data directory.
CREATE EXTENSION IF NOT EXISTS pg_llm CASCADE;

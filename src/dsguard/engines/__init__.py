"""Execution engines. Feature and rule SQL is written once in a portable DuckDB subset;
``duckdb`` runs it here, and the Spark engine runs the same text transpiled with sqlglot."""

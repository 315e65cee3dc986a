"""Execution engines. DuckDB (embedded, out-of-core) is the default."""

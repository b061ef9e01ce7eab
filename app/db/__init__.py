"""Service state (runs, idempotency keys, API keys, webhooks) in SQLAlchemy 2: SQLite or PostgreSQL."""

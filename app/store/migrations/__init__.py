"""Alembic migrations: one revision history for SQLite and PostgreSQL.

`upgrade_database(url)` brings a database to the newest revision; `bigthree db upgrade`
and every replica's start-up call it. See `runner.py` for the locking rule.
"""

from app.store.migrations.runner import UpgradeResult, head_revision, migrate, upgrade_database

__all__ = ["UpgradeResult", "head_revision", "migrate", "upgrade_database"]

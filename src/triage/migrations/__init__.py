"""Alembic migrations of the store (`triage db upgrade`)."""

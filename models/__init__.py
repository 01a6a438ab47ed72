"""SQLModel tables (no logic, no network) and the database engine helpers."""

from models.tables import *  # noqa: F403

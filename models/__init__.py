"""SQLModel tables (no logic, no network) and the database engine helpers."""

from models.channel_tables import *  # noqa: F403
from models.tables import *  # noqa: F403

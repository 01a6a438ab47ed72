"""Projects (tenants). A fresh install has one, ``default``; its slug is the webhook tenant."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.errors import NotFound
from models import Project
from models.types import new_id

DEFAULT_SLUG = "default"


async def ensure_default_project(session: AsyncSession) -> Project:
    """Idempotent, and safe when several processes start at once (unique slug)."""
    existing = await get_project_by_slug(session, DEFAULT_SLUG)
    if existing:
        return existing
    project = Project(id=new_id("prj"), slug=DEFAULT_SLUG, name="Default project")
    try:
        async with session.begin_nested():
            session.add(project)
    except IntegrityError:
        found = await get_project_by_slug(session, DEFAULT_SLUG)
        assert found is not None
        return found
    return project


async def get_project_by_slug(session: AsyncSession, slug: str) -> Project | None:
    return (await session.execute(select(Project).where(Project.slug == slug))).scalar_one_or_none()


async def require_project_by_slug(session: AsyncSession, slug: str) -> Project:
    project = await get_project_by_slug(session, slug)
    if project is None:
        raise NotFound(f"no tenant named {slug!r}", code="tenant_not_found")
    return project

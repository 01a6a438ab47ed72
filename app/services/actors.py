"""Who is acting, and the scope rules every service applies (API-2)."""

from __future__ import annotations

from dataclasses import dataclass

from app.services.errors import Forbidden


@dataclass(frozen=True)
class Actor:
    """An authenticated caller: an admin token, a smith token, or the signed-in console."""

    project_id: str
    kind: str  # admin | smith | console
    subject: str
    smith_id: str | None = None
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind in {"admin", "console"}

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this action needs an admin token", code="admin_required")

    def require_smith(self, smith_id: str) -> None:
        """Admins reach every smith of the project; a smith token only its own."""
        if not self.is_admin and self.smith_id != smith_id:
            raise Forbidden("a smith token may act only on its own smith", code="wrong_smith")

"""Who is acting, and the scope rules every service applies (API-2)."""

from __future__ import annotations

from dataclasses import dataclass

from app.services.errors import Forbidden

MCP_CALLER = "mcp"  # the token kind of an MCP caller (issue 13): one deployment's endpoint, nothing else


@dataclass(frozen=True)
class Actor:
    """An authenticated caller: an admin token, a smith token, an MCP caller token, or the console."""

    project_id: str
    kind: str  # admin | smith | mcp | console
    subject: str
    smith_id: str | None = None
    token_id: str | None = None
    deployment_id: str | None = None  # kind mcp: the one MCP deployment this caller may call

    @property
    def is_admin(self) -> bool:
        return self.kind in {"admin", "console"}

    @property
    def is_mcp_caller(self) -> bool:
        return self.kind == MCP_CALLER

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this action needs an admin token", code="admin_required")

    def require_smith(self, smith_id: str) -> None:
        """Admins reach every smith of the project; a smith token only its own; an MCP caller none."""
        if not self.is_admin and (self.smith_id is None or self.smith_id != smith_id):
            raise Forbidden("a smith token may act only on its own smith", code="wrong_smith")

    def require_scope(self, mcp_deployment_id: str | None = None) -> None:
        """An MCP caller token works only at its own deployment's MCP endpoint (``mcp_deployment_id``
        is the deployment whose endpoint is being called; None everywhere else, e.g. every /v1 route)."""
        if self.is_mcp_caller and (mcp_deployment_id is None or mcp_deployment_id != self.deployment_id):
            raise Forbidden("an MCP caller token can only call its own deployment's MCP endpoint",
                            code="mcp_token_scope")

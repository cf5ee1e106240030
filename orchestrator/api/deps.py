"""Dependencies every route shares: the service, and the caller as a verified principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.api.auth import Authenticator, Principal, Role, as_http_exception
from orchestrator.api.service import Service
from orchestrator.errors import AuthError

_bearer = HTTPBearer(auto_error=False, description="OAuth2 bearer JWT (RS256 or HS256)")


async def get_service(request: Request) -> Service:
    """The application's service."""
    service: Service = request.app.state.service
    return service


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from its bearer token; 401 when it has none or a bad one."""
    header = f"Bearer {credentials.credentials}" if credentials else None
    try:
        authenticator: Authenticator = request.app.state.authenticator
        principal = authenticator.authenticate(header)
        principal.require(Role.VIEWER)
    except AuthError as exc:
        raise as_http_exception(exc) from None
    return principal


ServiceDep = Annotated[Service, Depends(get_service)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]

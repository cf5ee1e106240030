"""Bearer-token authentication and role/namespace authorization of the HTTP API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from orchestrator.api.auth import (
    DEVELOPMENT_PRINCIPAL,
    AuthConfig,
    Authenticator,
    Principal,
    Role,
    issue_hs256_token,
    issue_token,
    principal_dependency,
    require_role,
)
from orchestrator.api.auth_keys import (
    generate_ec_key,
    generate_rsa_jwks,
    generate_rsa_key,
    public_jwk,
    write_jwks,
)
from orchestrator.errors import AuthConfigError, ForbiddenError, UnauthorizedError

SECRET = "development-secret-at-least-32-bytes-long"  # noqa: S105 - a test-only key
HS_CONFIG = AuthConfig(hs256_secret=SecretStr(SECRET))


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a JWK Set the test can replace."""

    def __init__(self) -> None:
        self.body = b'{"keys": []}'
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"

    def publish(self, *keys: dict[str, Any]) -> None:
        """Serve a JWK Set of ``keys`` from now on."""
        self.body = orjson.dumps({"keys": list(keys)})


@pytest.fixture(scope="module")
def rsa_key() -> str:
    """One RSA private key for the module (generation takes tens of milliseconds)."""
    return generate_rsa_key()


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: str) -> Path:
    """A JWKS file holding the public half of ``rsa_key`` as kid ``k1``."""
    return write_jwks(tmp_path / "jwks.json", [public_jwk(rsa_key, "k1")])


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    """A JWKS server running in a thread for the test's duration."""
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join()


def bearer(token: str) -> str:
    """The ``Authorization`` header value carrying ``token``."""
    return f"Bearer {token}"


def rs_token(key: str, kid: str = "k1", **claims: Any) -> str:
    """An RS256 operator token for namespace ``ns`` signed by ``key``."""
    return issue_token(
        key,
        algorithm="RS256",
        kid=kid,
        subject="alice",
        roles=[Role.OPERATOR],
        namespaces=["ns"],
        claims=claims,
    )


def hs_token(secret: str = SECRET, **claims: Any) -> str:
    """An HS256 operator token for namespace ``ns``; ``claims`` override the standard ones."""
    return issue_token(
        secret, subject="alice", roles=["operator"], namespaces=["ns"], claims=claims
    )


def forge_hs256(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 token signed with ``key`` by hand, which PyJWT refuses to do for a PEM key."""

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(orjson.dumps(claims))
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


def rejection(authenticator: Authenticator, token: str) -> str:
    """The message of the :class:`UnauthorizedError` ``token`` meets; it never quotes the token."""
    with pytest.raises(UnauthorizedError) as caught:
        authenticator.authenticate(bearer(token))
    assert token not in str(caught.value)
    return str(caught.value)


# Verification ----------------------------------------------------------------------------------


def test_valid_hs256_token_becomes_its_principal() -> None:
    """An HS256 token signed with the shared secret yields its subject, roles and namespaces."""
    token = issue_hs256_token(SecretStr(SECRET), "alice", [Role.OPERATOR], ["ns", "other"])

    principal = Authenticator(HS_CONFIG).authenticate(bearer(token))

    assert principal == Principal("alice", frozenset({Role.OPERATOR}), frozenset({"ns", "other"}))


def test_valid_rs256_token_verifies_against_the_jwks_file(rsa_key: str, jwks_file: Path) -> None:
    """An RS256 token verifies with the JWKS key its ``kid`` names."""
    authenticator = Authenticator(AuthConfig(jwks_file=jwks_file))

    principal = authenticator.authenticate(bearer(rs_token(rsa_key)))

    assert principal.subject == "alice"
    assert principal.roles == {Role.OPERATOR}


def test_valid_es256_token_verifies_against_the_jwks_file(tmp_path: Path) -> None:
    """An ES256 token verifies with a P-256 JWKS key."""
    key = generate_ec_key()
    path = write_jwks(tmp_path / "jwks.json", [public_jwk(key, "ec")])
    token = issue_token(
        key, algorithm="ES256", kid="ec", subject="bob", roles=["viewer"], namespaces=["*"]
    )

    assert Authenticator(AuthConfig(jwks_file=path)).authenticate(bearer(token)).subject == "bob"


def test_expired_token_is_rejected() -> None:
    """A token whose ``exp`` lies beyond the leeway in the past is rejected as expired."""
    now = int(time.time())

    message = rejection(Authenticator(HS_CONFIG), hs_token(iat=now - 600, exp=now - 60))

    assert message == "token expired"


def test_expiry_within_the_leeway_is_accepted() -> None:
    """A token expired for less than ``leeway_s`` still verifies (clock skew)."""
    token = hs_token(exp=int(time.time()) - 10)

    assert Authenticator(HS_CONFIG).authenticate(bearer(token)).subject == "alice"


def test_not_yet_valid_token_is_rejected() -> None:
    """A token whose ``nbf`` lies beyond the leeway in the future is rejected."""
    message = rejection(Authenticator(HS_CONFIG), hs_token(nbf=int(time.time()) + 600))

    assert message == "token not yet valid"


def test_token_without_exp_is_rejected() -> None:
    """``exp`` is required: a token that never expires is refused."""
    message = rejection(Authenticator(HS_CONFIG), hs_token(exp=None))

    assert message == "claim 'exp' missing"


def test_tampered_payload_fails_the_signature(rsa_key: str, jwks_file: Path) -> None:
    """Changing the payload of a signed token (here, to claim admin) breaks its signature."""
    header, _, signature = rs_token(rsa_key).split(".")
    claims = {"sub": "alice", "roles": ["admin"], "exp": int(time.time()) + 60}
    forged_payload = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"

    assert rejection(Authenticator(AuthConfig(jwks_file=jwks_file)), forged) == "signature invalid"


def test_token_signed_with_another_key_is_rejected(jwks_file: Path) -> None:
    """A token claiming kid ``k1`` but signed by a different RSA key, or secret, is refused."""
    authenticator = Authenticator(AuthConfig(jwks_file=jwks_file, hs256_secret=SecretStr(SECRET)))

    assert rejection(authenticator, rs_token(generate_rsa_key())) == "signature invalid"
    assert rejection(authenticator, hs_token("another-secret-of-at-least-32-bytes")) == (
        "signature invalid"
    )


def test_unsigned_alg_none_token_is_rejected(jwks_file: Path) -> None:
    """``alg: none`` is refused whatever keys are configured."""
    claims = {"sub": "alice", "roles": ["admin"], "exp": int(time.time()) + 60}
    token = jwt.encode(claims, "", algorithm="none")
    authenticator = Authenticator(AuthConfig(jwks_file=jwks_file, hs256_secret=SecretStr(SECRET)))

    assert rejection(authenticator, token) == "algorithm 'none' not accepted"


def test_hs256_token_signed_with_the_rsa_public_key_is_rejected(
    rsa_key: str, jwks_file: Path
) -> None:
    """Algorithm confusion fails: an HS256 token keyed with the RSA public key never verifies."""
    public_pem = (
        serialization.load_pem_private_key(rsa_key.encode(), password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"sub": "mallory", "roles": ["admin"], "exp": int(time.time()) + 60}
    forged = forge_hs256(claims, public_pem)
    jwks_only = Authenticator(AuthConfig(jwks_file=jwks_file))
    both = Authenticator(AuthConfig(jwks_file=jwks_file, hs256_secret=SecretStr(SECRET)))

    assert rejection(jwks_only, forged) == "algorithm 'HS256' not accepted"
    assert rejection(both, forged) == "signature invalid"


def test_issuer_and_audience_are_checked_when_configured() -> None:
    """With ``issuer`` and ``audience`` set, a token from elsewhere or for another API fails."""
    config = AuthConfig(hs256_secret=SecretStr(SECRET), issuer="https://idp", audience="orch")
    authenticator = Authenticator(config)

    good = hs_token(iss="https://idp", aud="orch")
    assert authenticator.authenticate(bearer(good)).subject == "alice"
    assert rejection(authenticator, hs_token(iss="https://evil", aud="orch")) == "issuer invalid"
    assert rejection(authenticator, hs_token(iss="https://idp", aud="other")) == "audience invalid"
    assert rejection(authenticator, hs_token(aud="orch")) == "claim 'iss' missing"


def test_audience_is_ignored_when_not_configured() -> None:
    """Without a configured audience, a token's ``aud`` claim does not matter."""
    assert Authenticator(HS_CONFIG).authenticate(bearer(hs_token(aud="anything"))).subject


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "bearer token missing"),
        ("", "bearer token missing"),
        ("Basic YWxpY2U6cHc=", "authorization header is not 'Bearer <token>'"),
        ("Bearer", "authorization header is not 'Bearer <token>'"),
        ("Bearer not.a.jwt", "token malformed"),
    ],
)
def test_missing_or_malformed_header_is_unauthorized(header: str | None, message: str) -> None:
    """A request without a well-formed bearer header is unauthorized, saying what is wrong."""
    with pytest.raises(UnauthorizedError, match=f"^{message}$"):
        Authenticator(HS_CONFIG).authenticate(header)


# Key rotation ----------------------------------------------------------------------------------


def test_unknown_kid_refetches_the_jwks_url_at_most_every_30_s(
    rsa_key: str, jwks_server: JwksServer
) -> None:
    """A rotated-in key is fetched on its first token, and unknown kids refetch once per 30 s."""
    jwks_server.publish(public_jwk(rsa_key, "k1"))
    clock = FakeClock()
    authenticator = Authenticator(AuthConfig(jwks_url=jwks_server.url), clock=clock)
    assert authenticator.authenticate(bearer(rs_token(rsa_key))).subject == "alice"
    assert jwks_server.requests == 1

    rotated = generate_rsa_key()
    token = rs_token(rotated, kid="k2")
    assert rejection(authenticator, token) == "unknown key id 'k2'"
    jwks_server.publish(public_jwk(rsa_key, "k1"), public_jwk(rotated, "k2"))
    clock.now += 10
    assert rejection(authenticator, token) == "unknown key id 'k2'"
    assert jwks_server.requests == 1  # throttled: the first read is under 30 s old

    clock.now += 20
    assert authenticator.authenticate(bearer(token)).subject == "alice"
    assert jwks_server.requests == 2
    assert authenticator.authenticate(bearer(rs_token(rsa_key))).subject == "alice"
    assert jwks_server.requests == 2  # known kids are served from the cache


def test_rewritten_jwks_file_is_reread_for_an_unknown_kid(rsa_key: str, jwks_file: Path) -> None:
    """Rotating the key in a JWKS file is picked up without reconfiguration."""
    clock = FakeClock()
    authenticator = Authenticator(AuthConfig(jwks_file=jwks_file), clock=clock)
    rotated = generate_rsa_key()
    write_jwks(jwks_file, [public_jwk(rotated, "k2")])
    clock.now += 30

    assert authenticator.authenticate(bearer(rs_token(rotated, kid="k2"))).subject == "alice"


def test_unreachable_jwks_url_is_unauthorized_not_a_crash(rsa_key: str) -> None:
    """When the JWKS cannot be fetched and no keys are cached, tokens are refused with a reason."""
    authenticator = Authenticator(AuthConfig(jwks_url="http://127.0.0.1:9/jwks.json"))

    assert rejection(authenticator, rs_token(rsa_key)).startswith("no signing keys available")


def test_reconfigure_swaps_keys(rsa_key: str, tmp_path: Path) -> None:
    """After ``reconfigure`` a token of the old key fails and one of the new key passes."""
    old_key, old_path = rsa_key, write_jwks(tmp_path / "old.json", [public_jwk(rsa_key, "k1")])
    new_key, new_path = generate_rsa_jwks(tmp_path / "new", kid="k1")
    authenticator = Authenticator(AuthConfig(jwks_file=old_path))
    assert authenticator.authenticate(bearer(rs_token(old_key))).subject == "alice"

    authenticator.reconfigure(AuthConfig(jwks_file=new_path))

    assert rejection(authenticator, rs_token(old_key)) == "signature invalid"
    assert authenticator.authenticate(bearer(rs_token(new_key))).subject == "alice"


def test_reconfigure_with_a_bad_config_keeps_the_old_keys() -> None:
    """A configuration that cannot verify anything raises and leaves the previous one in place."""
    authenticator = Authenticator(HS_CONFIG)

    with pytest.raises(AuthConfigError):
        authenticator.reconfigure(AuthConfig())

    assert authenticator.authenticate(bearer(hs_token())).subject == "alice"


# Configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (AuthConfig(), "no key source is configured"),
        (AuthConfig(hs256_secret=SecretStr("short")), "at least 32 bytes"),
        (AuthConfig(jwks_file=Path("/nonexistent/jwks.json")), "cannot read JWKS"),
        (AuthConfig(jwks_url="file:///etc/passwd"), "http\\(s\\) URL"),
    ],
)
def test_unusable_configuration_fails_at_construction(config: AuthConfig, message: str) -> None:
    """Enabled authentication without a usable key source is a configuration error up front."""
    with pytest.raises(AuthConfigError, match=message):
        Authenticator(config)


def test_disabled_authentication_lets_everyone_in_as_the_development_principal() -> None:
    """With ``enabled=False`` any request, token or not, is the all-powerful ``anonymous``."""
    authenticator = Authenticator(AuthConfig(enabled=False))

    assert not authenticator.enabled
    assert authenticator.authenticate(None) is DEVELOPMENT_PRINCIPAL
    assert DEVELOPMENT_PRINCIPAL.subject == "anonymous"
    assert DEVELOPMENT_PRINCIPAL.has(Role.ADMIN)
    assert DEVELOPMENT_PRINCIPAL.sees("any-namespace")


# Claims and authorization ----------------------------------------------------------------------


def test_roles_are_ordered_viewer_operator_admin() -> None:
    """A role includes the roles below it and not those above."""
    operator = Principal("o", frozenset({Role.OPERATOR}), frozenset({"*"}))

    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert operator.has(Role.VIEWER)
    assert operator.has(Role.OPERATOR)
    assert not operator.has(Role.ADMIN)
    with pytest.raises(ForbiddenError, match="role 'admin' or higher required"):
        operator.require(Role.ADMIN)


def test_scope_string_grants_orchestrator_roles_and_unknown_names_are_ignored() -> None:
    """``orchestrator:<role>`` scopes add roles; other scopes and unknown roles add nothing."""
    token = hs_token(roles=["superuser", "viewer"], scope="openid orchestrator:admin profile")

    principal = Authenticator(HS_CONFIG).authenticate(bearer(token))

    assert principal.roles == {Role.VIEWER, Role.ADMIN}


def test_token_without_a_known_role_has_no_permission() -> None:
    """A verified token whose roles are all unknown holds no role, so even reading is forbidden."""
    principal = Authenticator(HS_CONFIG).authenticate(bearer(hs_token(roles=["root"])))

    assert principal.roles == frozenset()
    with pytest.raises(ForbiddenError, match="role 'viewer'"):
        principal.require(Role.VIEWER)


def test_wildcard_namespace_sees_every_namespace() -> None:
    """The namespace ``"*"`` grants every namespace."""
    principal = Authenticator(HS_CONFIG).authenticate(bearer(hs_token(namespaces=["*"])))

    assert principal.sees("payments")
    principal.require(Role.OPERATOR, "payments")


def test_namespace_outside_the_token_is_forbidden() -> None:
    """A principal may touch only its namespaces; the single ``namespace`` claim counts too."""
    principal = Authenticator(HS_CONFIG).authenticate(
        bearer(hs_token(namespaces=["ns"], namespace="billing"))
    )

    assert principal.namespaces == {"ns", "billing"}
    assert not principal.sees("payments")
    with pytest.raises(ForbiddenError, match="namespace 'payments' not allowed"):
        principal.require(Role.VIEWER, "payments")


def test_token_without_namespace_claims_sees_no_namespace() -> None:
    """No ``namespaces`` or ``namespace`` claim means no namespace, not every namespace."""
    principal = Authenticator(HS_CONFIG).authenticate(bearer(hs_token(namespaces=None)))

    assert principal.namespaces == frozenset()
    assert not principal.sees("default")


def test_malformed_roles_claim_is_unauthorized() -> None:
    """A ``roles`` claim that is not a list of strings makes the token invalid."""
    message = rejection(Authenticator(HS_CONFIG), hs_token(roles="admin"))

    assert message == "claim 'roles' is not a list of strings"


# FastAPI glue ----------------------------------------------------------------------------------


@pytest.fixture
def client() -> TestClient:
    """An app with a viewer route and an admin route guarded by the auth dependencies."""
    authenticator = Authenticator(HS_CONFIG)
    current = principal_dependency(lambda: authenticator)
    app = FastAPI()

    @app.get("/who")
    def who(principal: Principal = Depends(current)) -> dict[str, str]:  # noqa: B008 - FastAPI
        return {"subject": principal.subject}

    @app.delete("/definitions", dependencies=[Depends(require_role(Role.ADMIN, current))])
    def delete() -> dict[str, bool]:
        return {"deleted": True}

    return TestClient(app)


def test_dependency_answers_401_with_a_bearer_challenge(client: TestClient) -> None:
    """No or a bad token gives 401 with ``WWW-Authenticate: Bearer`` and the reason."""
    missing = client.get("/who")
    expired = client.get("/who", headers={"Authorization": bearer(hs_token(exp=1))})

    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {"detail": "bearer token missing"}
    assert expired.status_code == 401
    assert expired.json() == {"detail": "token expired"}


def test_dependency_answers_403_without_a_known_role(client: TestClient) -> None:
    """A verified token with no known role is forbidden, not unauthorized."""
    response = client.get("/who", headers={"Authorization": bearer(hs_token(roles=[]))})

    assert response.status_code == 403


def test_require_role_admits_the_role_and_forbids_lower_ones(client: TestClient) -> None:
    """An admin route accepts an admin token and forbids an operator one with 403."""
    admin = issue_hs256_token(SECRET, "root", [Role.ADMIN], ["*"])

    ok = client.delete("/definitions", headers={"Authorization": bearer(admin)})
    denied = client.delete("/definitions", headers={"Authorization": bearer(hs_token())})

    assert ok.json() == {"deleted": True}
    assert denied.status_code == 403
    assert denied.json() == {"detail": "role 'admin' or higher required"}
    assert client.get("/who", headers={"Authorization": bearer(hs_token())}).json() == {
        "subject": "alice"
    }

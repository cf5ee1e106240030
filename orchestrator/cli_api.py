"""The ``api`` and ``token`` commands: serve the HTTP API and UI; sign a development token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from orchestrator.config import Settings
from orchestrator.log.kafka import check_reachable

__all__ = ["attach"]


def _settings(ctx: click.Context) -> Settings:
    overrides = {k: v for k, v in (ctx.obj or {}).items() if v is not None}
    return Settings(**overrides)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option(
    "--read-dir",
    type=click.Path(path_type=Path),
    help="The read model's RocksDB directory (default: <state-dir>/read-model).",
)
@click.option(
    "--no-auth", is_flag=True, help="Local development only: accept every request as admin."
)
@click.option("--hs256-secret", envvar="ORCH_AUTH_HS256_SECRET", help="Shared secret (dev).")
@click.option("--jwks-file", type=click.Path(path_type=Path), envvar="ORCH_AUTH_JWKS_FILE")
@click.option("--jwks-url", envvar="ORCH_AUTH_JWKS_URL", help="The identity provider's JWKS.")
@click.option("--issuer", envvar="ORCH_AUTH_ISSUER", help="Required 'iss' claim.")
@click.option("--audience", envvar="ORCH_AUTH_AUDIENCE", help="Required 'aud' claim.")
@click.option("--max-body-bytes", type=int, default=1_048_576, show_default=True)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    envvar="ORCH_CONFIG_FILE",
    help="TOML file reloaded on change (log level, auth keys, rate limits, body limit).",
)
@click.pass_context
def api(ctx: click.Context, /, **options: Any) -> None:
    """Serve the HTTP API and the web UI (catches up the read model before it is ready)."""
    import uvicorn

    from orchestrator.api.app import ApiConfig, create_app
    from orchestrator.api.auth import AuthConfig
    from orchestrator.live_config import load_live_config
    from orchestrator.observability import configure_observability

    settings = _settings(ctx)
    configure_observability(settings, "orchestrator-api")
    if options["config_file"] is not None:
        load_live_config(options["config_file"])  # a bad file fails here, with its message
    check_reachable(settings)
    auth = AuthConfig(
        enabled=not options["no_auth"],
        hs256_secret=options["hs256_secret"],
        jwks_file=options["jwks_file"],
        jwks_url=options["jwks_url"],
        issuer=options["issuer"],
        audience=options["audience"],
    )
    config = ApiConfig(
        read_dir=options["read_dir"] or settings.state_dir / "read-model",
        max_body_bytes=options["max_body_bytes"],
        rate_limit_per_second=0.0,
        auth=auth,
    )
    app = create_app(settings, config, config_file=options["config_file"])
    uvicorn.run(
        app,
        host=options["host"],
        port=options["port"],
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


@click.command()
@click.option("--secret", envvar="ORCH_AUTH_HS256_SECRET", required=True, help="HS256 secret.")
@click.option("--subject", default="developer", show_default=True)
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["viewer", "operator", "admin"]),
    default=["admin"],
    show_default=True,
)
@click.option("--namespace", "namespaces", multiple=True, default=["*"], show_default=True)
@click.option("--ttl", type=int, default=3600, show_default=True, help="Seconds it is valid.")
def token(
    secret: str, subject: str, roles: tuple[str, ...], namespaces: tuple[str, ...], ttl: int
) -> None:
    """Print an HS256 bearer token for development and tests."""
    from orchestrator.api.auth import issue_hs256_token

    click.echo(issue_hs256_token(secret, subject, roles, namespaces, ttl_s=ttl))


def attach(group: click.Group) -> None:
    """Add ``api`` and ``token`` to the main group."""
    group.add_command(api)
    group.add_command(token)

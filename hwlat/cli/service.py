"""``hwlat serve``, ``hwlat db ...`` and ``hwlat token ...``: running and administering the
service on the machine that holds its database.

Imports stay inside the commands: ``hwlat serve`` must start without loading agent or
converter code, and every other command without loading the service.
"""

from __future__ import annotations

from typing import Annotated

import typer

from models.errors import UserInputError

db_app = typer.Typer(help="Manage the latency database.", no_args_is_help=True)
token_app = typer.Typer(
    help="Manage API tokens (directly in the database; the service need not run).",
    no_args_is_help=True,
)


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Accept requests without a token (loopback only).")
    ] = False,
    upgrade: Annotated[bool, typer.Option(help="Apply database migrations first.")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the latency service (uvicorn)."""
    import os

    import uvicorn

    from latency_service.addresses import is_loopback
    from latency_service.settings import get_settings

    settings = get_settings()
    if (no_auth or settings.auth_disabled) and not is_loopback(host):
        raise UserInputError(
            f"refusing to serve without authentication on {host}; bind to 127.0.0.1 or drop "
            "--no-auth / HWLAT_AUTH_DISABLED"
        )
    if no_auth:
        # Worker processes read settings from the environment. A single worker runs the app in
        # this process, where get_settings() has already cached the settings read above.
        os.environ["HWLAT_AUTH_DISABLED"] = "true"
        get_settings.cache_clear()
    if upgrade:
        from latency_service.migrate import upgrade as run_upgrade

        run_upgrade(settings.resolved_database_url)
    from latency_service.metrics.multiproc import metrics_directory

    # Workers inherit the directory from this process's environment; /metrics in any worker
    # then adds up all of them.
    with metrics_directory():
        uvicorn.run(
            "latency_service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
        )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the database schema."""
    from latency_service.migrate import redact, upgrade
    from latency_service.settings import get_settings

    url = get_settings().resolved_database_url
    upgrade(url, revision=revision)
    typer.echo(f"database at {redact(url)} is at revision {revision}")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (password hidden)."""
    from latency_service.migrate import redact
    from latency_service.settings import get_settings

    typer.echo(redact(get_settings().resolved_database_url))


@token_app.command("create")
def token_create(
    scope: Annotated[str, typer.Option(help="read, ingest or admin.")],
    name: Annotated[str, typer.Option(help="Who or what the token is for.")] = "cli",
) -> None:
    """Create a token and print it once; only its hash is stored."""
    from latency_service.admin import create_token

    typer.echo(create_token(name, scope))


@token_app.command("list")
def token_list() -> None:
    """List tokens: id, name, scope, created, revoked (never the secrets)."""
    from latency_service.admin import list_tokens

    for token in list_tokens():
        revoked = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
        typer.echo(
            f"{token.id}\t{token.name}\t{token.scope}\t{token.created_at:%Y-%m-%d %H:%M}\t{revoked}"
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="Token id (see `hwlat token list`).")],
) -> None:
    """Revoke a token. Every worker of a running service refuses it within HWLAT_TOKEN_CACHE_S
    seconds."""
    from latency_service.admin import revoke_token

    token = revoke_token(token_id)
    typer.echo(f"token {token.id} ({token.name}) revoked")

"""``vigil serve`` (the hub) and ``vigil hub``: its users and device tokens.

``vigil serve`` listens on 127.0.0.1:8600 without login; on any other address it requires a
login or a device token, and refuses to start until an admin user exists. Users and tokens are
kept in the hub's database, so ``vigil hub`` works whether the hub runs or not.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from vigil.errors import ConfigError, DependencyError

if TYPE_CHECKING:
    from vigil.hub.accounts import Accounts
    from vigil.hub.settings import HubSettings

HUB_PACKAGES = (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("argon2", "argon2-cffi"))


def require_hub_packages(purpose: str) -> None:
    """Raise DependencyError naming the first package of the ``hub`` extra that is missing."""
    for module, package in HUB_PACKAGES:
        if importlib.util.find_spec(module) is None:
            raise DependencyError(package, "hub", purpose)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8600, show_default=True)
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="Records database URL (default: SQLite in VIGIL_HOME).",
)
@click.option(
    "--auth/--no-auth",
    default=None,
    help="Require a login or device token (default: only when not on loopback).",
)
@click.option("--tz", metavar="ZONE", help="Time zone of hours and days (default: local).")
@click.option(
    "--snapshots",
    "snapshot_store",
    metavar="DIR|s3://BUCKET/PREFIX",
    help="Where snapshot images go (default: VIGIL_HOME/hub/snapshots).",
)
def serve_command(
    *,
    host: str,
    port: int,
    database_url: str | None,
    auth: bool | None,
    tz: str | None,
    snapshot_store: str | None,
) -> None:
    """Run the hub: devices, live streams, records, charts and models in a browser."""
    require_hub_packages("vigil serve")
    from vigil.hub.settings import is_loopback

    if auth is False and not is_loopback(host):
        raise ConfigError(
            f"--no-auth: login cannot be switched off on {host}, which other machines can "
            "reach; listen on 127.0.0.1 or leave auth on"
        )
    settings = hub_settings(
        host=host,
        port=port,
        database_url=database_url,
        auth=auth,
        tz=tz,
        snapshot_store=snapshot_store,
    )
    from vigil.cli.predict import bind
    from vigil.hub.app import create_app
    from vigil.hub.server import run_hub

    app = create_app(settings)
    hub = app.state.hub
    try:
        hub.open()
        if settings.auth_required and not hub.accounts.has_admin():
            raise ConfigError(
                f"the hub on {host} requires a login, but there is no admin user yet; "
                "create one with: vigil hub user add NAME --role admin"
            )
        listener = bind(settings.host, settings.port)
    except BaseException:
        hub.close()
        raise
    click.echo(f"hub on {_url(listener)} ({_access_line(settings)})", err=True)
    started = time.monotonic()
    try:
        run_hub(app, listener)
    finally:
        listener.close()
    click.echo(f"hub stopped after {time.monotonic() - started:.0f} s", err=True)


def _url(listener: Any) -> str:
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _access_line(settings: HubSettings) -> str:
    if settings.auth_required:
        return "login required: a session or a device token on every request"
    return "no login: loopback only, every request acts as an admin"


def hub_settings(**values: Any) -> HubSettings:
    """Return the hub's settings from command-line values (None values keep the defaults).

    Raises:
        ConfigError: a value is not valid.
    """
    from pydantic import ValidationError

    from vigil.config.base import describe_validation_error
    from vigil.hub.settings import HubSettings

    given = {key: value for key, value in values.items() if value is not None}
    try:
        return HubSettings(**given)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, HubSettings, None, "command line")
        ) from None


@click.group("hub")
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="The hub's database URL (default: SQLite in VIGIL_HOME).",
)
@click.pass_context
def hub_group(ctx: click.Context, database_url: str | None) -> None:
    """Manage the hub's users and device tokens."""
    ctx.obj = database_url


def _accounts(ctx: click.Context) -> Accounts:
    require_hub_packages("vigil hub")
    from vigil.hub.accounts import Accounts
    from vigil.hub.db import HubDatabase

    database = HubDatabase(ctx.obj).open()
    ctx.call_on_close(database.close)
    return Accounts(database)


@hub_group.group("user")
def user_group() -> None:
    """Add, list and remove the people who log in."""


@user_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["admin", "viewer"]),
    default="viewer",
    show_default=True,
    help="admin: everything; viewer: read only.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add user NAME; the password comes from a prompt or --password-stdin."""
    from vigil.hub.accounts import check_password, check_user_name

    check_user_name(name)
    password = _read_password(password_stdin)
    check_password(password)
    user = _accounts(ctx).add_user(name, password, role)
    click.echo(f"added {user.role} {user.name}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ConfigError("--password-stdin: standard input is empty; pipe the password in")
        return line.rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_group.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List the users and their roles."""
    users = _accounts(ctx).users()
    if not users:
        click.echo("no users (add one with: vigil hub user add NAME --role admin)")
    for user in users:
        click.echo(f"{user.name}\t{user.role}\tadded {_when(user.created)}")


@user_group.command("rm")
@click.argument("name")
@click.pass_context
def user_rm(ctx: click.Context, name: str) -> None:
    """Remove user NAME and end their sessions."""
    from vigil.hub.accounts import AccountError

    try:
        user = _accounts(ctx).remove_user(name)
    except AccountError as exc:
        raise ConfigError(str(exc)) from None
    click.echo(f"removed {user.role} {user.name}")


@hub_group.group("token")
def token_group() -> None:
    """Create, list and revoke device tokens."""


@token_group.command("create")
@click.argument("device_id")
@click.pass_context
def token_create(ctx: click.Context, device_id: str) -> None:
    """Make a token for DEVICE_ID and print it (only this once)."""
    made = _accounts(ctx).create_token(device_id)
    click.echo(f"token {made.id} for {device_id} (shown only now; keep it secret):", err=True)
    click.echo(made.secret)


@token_group.command("list")
@click.option("--device", "device_id", help="Only this device's tokens.")
@click.pass_context
def token_list(ctx: click.Context, device_id: str | None) -> None:
    """List the tokens: id, device, created, last used, revoked (never the secrets)."""
    tokens = _accounts(ctx).tokens(device_id)
    if not tokens:
        click.echo("no tokens (make one with: vigil hub token create DEVICE_ID)")
    for token in tokens:
        used = _when(token.last_used) if token.last_used else "never"
        state = f"revoked {_when(token.revoked)}" if token.revoked else "active"
        click.echo(
            f"{token.id}\t{token.device_id}\tcreated {_when(token.created)}\t"
            f"last used {used}\t{state}"
        )


@token_group.command("revoke")
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke token TOKEN_ID: its device can no longer send with it."""
    from vigil.hub.accounts import AccountError

    try:
        token = _accounts(ctx).revoke_token(token_id)
    except AccountError as exc:
        raise ConfigError(f"{exc}; see: vigil hub token list") from None
    click.echo(f"revoked token {token.id} of {token.device_id}")


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")

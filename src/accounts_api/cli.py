"""accounts-api serve | worker | migrate | create-admin | verify-ledger | revoke-tokens |
set-password | openapi"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from accounts_api import logs, metrics_directory, serving
from accounts_api.auth import admins
from accounts_api.db import embedded, ledger, migrate
from accounts_api.db.pool import Connection
from accounts_api.delivery.worker import DeliveryConfig, Worker
from accounts_api.settings import Settings

BOOTSTRAP_ADMIN = "admin"
T = TypeVar("T")


def say(message: str) -> None:
    logs.say(message)


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server under the data directory (started if needed)."""
    if settings.database_url:
        return settings.database_url
    say(f"Starting embedded PostgreSQL in {settings.data_dir / 'pgdata'} ...")
    url = embedded.start(settings.data_dir)
    say("Embedded PostgreSQL is up.")
    return url


def run_migrations(url: str) -> None:
    say("Applying migrations ...")
    migrate.upgrade(url)
    say("Migrations are up to date.")


async def _bootstrap_admin(url: str, settings: Settings) -> None:
    """First run of the embedded default: an `admin` with a generated password, printed once
    and kept in <data dir>/admin_password."""
    connection = await asyncpg.connect(url)
    try:
        if await connection.fetchval("SELECT EXISTS (SELECT 1 FROM admin_users)"):
            return
        password = secrets.token_urlsafe(18)
        await admins.create(connection, BOOTSTRAP_ADMIN, password)
    finally:
        await connection.close()
    path = settings.data_dir / "admin_password"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    say(f"Created admin user '{BOOTSTRAP_ADMIN}' with password: {password}")
    say(f"(the password is also stored in {path})")


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # issue 9: before any worker imports prometheus_client; the log format for every line
    metrics_directory.prepare_multiprocess_directory()
    logs.configure(settings.log_format)
    url = database_url(settings)
    if settings.embedded:
        run_migrations(url)
        asyncio.run(_bootstrap_admin(url, settings))
    # uvicorn answers SIGTERM by re-sending it with the default action, which would end the
    # process without its exit hooks (the embedded server's stop); exit normally instead
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # workers read their configuration from the environment
    os.environ["DATABASE_URL"] = url
    os.environ["ACCOUNTS_API_SECRET_KEY"] = settings.secret_key()
    say(f"Serving on http://{args.host}:{args.port} with {args.workers} worker(s)")
    uvicorn.run(
        "accounts_api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        log_config=logs.config(settings.log_format),
        # observation.py writes the access log, with the request id, admin and route
        access_log=False,
        server_header=False,
        # uvicorn would replace the peer with an X-Forwarded-For address, trusting its own list;
        # proxies.TrustedProxies applies ACCOUNTS_API_TRUSTED_PROXIES instead, as the one rule
        proxy_headers=False,
        http=serving.http_protocol(),
        loop=serving.event_loop(),
    )
    return 0


def worker_command(args: argparse.Namespace, settings: Settings) -> int:
    """Delivers notifications until SIGTERM or SIGINT (issue 7), beside or instead of the
    delivery inside `serve` (ACCOUNTS_API_DELIVERY=off)."""
    # the service's own log (a line per attempt); other libraries' say only warnings
    logs.configure(settings.log_format)
    url = database_url(settings)
    if settings.embedded:
        run_migrations(url)
    asyncio.run(_deliver_until_stopped(url, settings))
    return 0


async def _deliver_until_stopped(url: str, settings: Settings) -> None:
    worker = Worker(url, DeliveryConfig.from_settings(settings))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    say("Delivering notifications; SIGTERM or SIGINT stops.")
    await worker.run()
    say("Stopped delivering notifications.")


def migrate_command(args: argparse.Namespace, settings: Settings) -> int:
    run_migrations(database_url(settings))
    return 0


def _on_admins(settings: Settings, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Runs `work` on a connection of its own, on a migrated database (the embedded one is
    migrated first, as `serve` would): the admin commands' common ground."""
    url = database_url(settings)
    if settings.embedded:
        run_migrations(url)

    async def run() -> T:
        connection = await asyncpg.connect(url)
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(run())


def create_admin(args: argparse.Namespace, settings: Settings) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
    if not password:
        say("error: a password is required (--password or --password-stdin)")
        return 2
    try:
        admin_id = _on_admins(
            settings, lambda db: admins.create(db, args.username, password, args.allowed_ip)
        )
    except admins.AdminExists:
        say(f"error: admin user '{args.username}' already exists")
        return 1
    except ValueError as error:
        say(f"error: {error}")
        return 2
    say(f"Created admin user '{args.username}' (id {admin_id})")
    return 0


def revoke_tokens(args: argparse.Namespace, settings: Settings) -> int:
    """Every token issued to the admin so far stops working; new logins get new ones."""
    try:
        _on_admins(settings, lambda db: admins.revoke_tokens(db, args.username))
    except admins.UnknownAdmin:
        say(f"error: admin user '{args.username}' does not exist")
        return 1
    say(f"Revoked every token of admin user '{args.username}'")
    return 0


def read_new_password() -> str:
    """From stdin when it is not a terminal (a script's pipe), else typed twice at a prompt."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("New password: ")
    if getpass.getpass("New password again: ") != password:
        raise ValueError("the passwords do not match")
    return password


def set_password(args: argparse.Namespace, settings: Settings) -> int:
    """A new password; the admin's tokens are revoked with the old one."""
    try:
        password = read_new_password()
    except ValueError as error:
        say(f"error: {error}")
        return 2
    if not password:
        say("error: a password is required")
        return 2
    try:
        _on_admins(settings, lambda db: admins.set_password(db, args.username, password))
    except admins.UnknownAdmin:
        say(f"error: admin user '{args.username}' does not exist")
        return 1
    say(f"Set the password of admin user '{args.username}' and revoked its tokens")
    return 0


def verify_ledger(args: argparse.Namespace, settings: Settings) -> int:
    """Every account's balance must be the sum of its ledger entries; exit 1 naming those
    that disagree."""
    url = database_url(settings)

    async def run() -> tuple[int, list[ledger.Disagreement]]:
        connection = await asyncpg.connect(url)
        try:
            return await ledger.count_accounts(connection), await ledger.disagreements(connection)
        finally:
            await connection.close()

    checked, wrong = asyncio.run(run())
    for account in wrong:
        chain = "" if account.chain_ok else "; its entries' balance_after do not follow each other"
        name = account.name if account.name is not None else "deleted"
        balance = account.balance if account.balance is not None else "none"
        print(
            f"account {account.account_id} ({name}): balance {balance},"
            f" ledger sum {account.ledger_total}{chain}"
        )
    say(f"{checked} accounts checked, {len(wrong)} disagree with the ledger")
    return 1 if wrong else 0


def openapi_command(args: argparse.Namespace, settings: Settings) -> int:
    """The OpenAPI document the service serves at /api/rest/admin/openapi.json. It is built
    from the routes alone: no database is started or reached, no key is read or made."""
    from accounts_api.app import create_app

    offline = dataclasses.replace(
        settings,
        database_url=settings.database_url or "postgresql://unused/",
        secret_key_env=settings.secret_key_env or "unused",
    )
    app = create_app(offline)
    body: bytes = app.state.openapi.body(app.routes)
    if args.output is None:
        sys.stdout.buffer.write(body + b"\n")
        sys.stdout.flush()
    else:
        with open(args.output, "wb") as handle:
            handle.write(body + b"\n")
        say(f"Wrote the OpenAPI document to {args.output}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="accounts-api", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the HTTP service")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--workers", type=int, default=1)
    serve_parser.set_defaults(handler=serve)
    worker_parser = commands.add_parser(
        "worker", help="deliver notifications (e-mails, webhooks) until SIGTERM or SIGINT"
    )
    worker_parser.set_defaults(handler=worker_command)
    migrate_parser = commands.add_parser("migrate", help="apply database migrations")
    migrate_parser.set_defaults(handler=migrate_command)
    admin_parser = commands.add_parser("create-admin", help="create an admin user")
    admin_parser.add_argument("username")
    secret = admin_parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password")
    secret.add_argument("--password-stdin", action="store_true")
    admin_parser.add_argument(
        "--allowed-ip",
        action="append",
        default=[],
        metavar="CIDR",
        help="allow requests only from this address or network (repeatable)",
    )
    admin_parser.set_defaults(handler=create_admin)
    verify_parser = commands.add_parser(
        "verify-ledger", help="check every account's balance against its ledger"
    )
    verify_parser.set_defaults(handler=verify_ledger)
    revoke_parser = commands.add_parser(
        "revoke-tokens", help="make every token issued to an admin user so far stop working"
    )
    revoke_parser.add_argument("username")
    revoke_parser.set_defaults(handler=revoke_tokens)
    password_parser = commands.add_parser(
        "set-password",
        help="set an admin user's password (from stdin, or typed twice) and revoke its tokens",
    )
    password_parser.add_argument("username")
    password_parser.set_defaults(handler=set_password)
    openapi_parser = commands.add_parser(
        "openapi", help="print the OpenAPI document (no database needed)"
    )
    openapi_parser.add_argument("--output", metavar="FILE", help="write it to FILE instead")
    openapi_parser.set_defaults(handler=openapi_command)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    code: int = args.handler(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())

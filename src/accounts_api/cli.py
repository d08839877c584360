"""accounts-api serve | worker | migrate | create-admin | verify-ledger | revoke-tokens |
set-password | openapi"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import getpass
import math
import os
import secrets
import signal
import socket
import sys
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from accounts_api import logs, metrics_directory, serving
from accounts_api.auth import admins
from accounts_api.db import embedded, ledger, migrate
from accounts_api.db.pool import Connection
from accounts_api.delivery.worker import DeliveryConfig, Worker
from accounts_api.settings import VARIABLES, ConfigurationError, Settings

BOOTSTRAP_ADMIN = "admin"
T = TypeVar("T")
Handler = Callable[[argparse.Namespace, Settings], int]


def say(message: str) -> None:
    logs.say(message)


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server under the data directory (started if needed)."""
    if settings.database_url:
        return settings.database_url
    pgdata = settings.data_dir / "pgdata"
    if embedded.running(settings.data_dir):
        say(f"Attaching to the embedded PostgreSQL running in {pgdata}")
        return embedded.start(settings.data_dir)
    say(f"Starting embedded PostgreSQL in {pgdata} ...")
    url = embedded.start(settings.data_dir)
    say("Embedded PostgreSQL is up.")
    return url


def run_migrations(url: str) -> None:
    applied = migrate.upgrade(url)
    head = migrate.head_revision()
    if not applied:
        say(f"No migrations to apply: the database is at {head}.")
        return
    plural = "s" if len(applied) > 1 else ""
    listed = ", ".join(applied)
    say(f"Applied {len(applied)} migration{plural} ({listed}): the database is at {head}.")


def _password_file(settings: Settings) -> Path:
    return settings.data_dir / "admin_password"


async def _bootstrap_admin(url: str, settings: Settings) -> None:
    """First run of the embedded default: an `admin` with a generated password, printed once
    and kept in <data dir>/admin_password."""
    path = _password_file(settings)
    connection = await asyncpg.connect(url)
    try:
        if await connection.fetchval("SELECT EXISTS (SELECT 1 FROM admin_users)"):
            if path.exists():
                say(f"The first run's password of admin user '{BOOTSTRAP_ADMIN}' is in {path}")
            return
        password = secrets.token_urlsafe(18)
        await admins.create(connection, BOOTSTRAP_ADMIN, password)
    finally:
        await connection.close()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    say(f"Created admin user '{BOOTSTRAP_ADMIN}' with password: {password}")
    say(f"(kept in {path}; `accounts-api set-password {BOOTSTRAP_ADMIN}` sets another)")


def listening_socket(host: str, port: int) -> socket.socket:
    """The service's socket, bound and listening before anything else starts: a busy port is
    reported at once, and a client that connects while the database starts waits instead of
    being refused. Port 0 takes any free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except BaseException:
        listener.close()
        raise
    # uvicorn's worker processes inherit it
    listener.set_inheritable(True)
    return listener


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"error: {host}:{port} is already in use (is the service already running?);"
            " choose another port with --port (with make: make run PORT=8001)"
        )
    if error.errno == errno.EACCES:
        return (
            f"error: not allowed to listen on port {port} (ports below 1024 need privileges);"
            " choose another port with --port"
        )
    reason = error.strerror or str(error)
    return f"error: cannot listen on {host}:{port}: {reason}; check --host"


def _address(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _supervisor_class() -> type[Any]:
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's supervisor of `--workers N`, which stops accepting at once on SIGTERM or
        SIGINT: it closes its own copy of the listening socket before it asks the workers to
        stop (each closes its copy as its shutdown begins). With the supervisor's copy open,
        the kernel went on accepting connections that no worker would ever serve, until the
        supervisor exited: a client, or a proxy's POST, then waited and got reset."""

        def terminate_all(self) -> None:
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    return Supervisor


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # uvicorn answers SIGTERM by re-sending it with the default action once it has shut down
    # gracefully, which would end the process without its exit hooks (the embedded server's
    # stop); exit normally instead. Set first: a SIGTERM while PostgreSQL starts stops it too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # issue 9: before any worker imports prometheus_client; the log format for every line
    metrics_directory.prepare_multiprocess_directory()
    logs.configure(settings.log_format)
    try:
        listener = listening_socket(args.host, args.port)
    except OSError as error:
        say(_cannot_listen(args.host, args.port, error))
        return 1
    port = listener.getsockname()[1]
    url = database_url(settings)
    if settings.embedded:
        run_migrations(url)
        asyncio.run(_bootstrap_admin(url, settings))
    # workers read their configuration from the environment
    os.environ["DATABASE_URL"] = url
    os.environ["ACCOUNTS_API_SECRET_KEY"] = settings.secret_key()
    config = uvicorn.Config(
        "accounts_api.app:create_app",
        factory=True,
        host=args.host,
        port=port,
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
        # SIGTERM: stop accepting, let in-flight requests finish within this, then exit
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
    )
    say(f"Serving on {_address(args.host, port)} with {args.workers} worker(s)")
    server = uvicorn.Server(config)
    # as uvicorn.run, but on the socket bound above
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C, after the graceful shutdown
        if args.workers > 1:
            _supervisor_class()(config, sockets=[listener]).run()
            return 0
        server.run(sockets=[listener])
    return 0 if server.started else 1


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
        say(
            f"error: admin user '{args.username}' already exists;"
            f" to give it a new password: accounts-api set-password {args.username}"
        )
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
    accounts = "account" if checked == 1 else "accounts"
    verb = "disagrees" if len(wrong) == 1 else "disagree"
    say(f"{checked} {accounts} checked, {len(wrong)} {verb} with the ledger")
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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (unless its help says it, or it has none) and keeps the
    descriptions' paragraphs."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if shown and action.option_strings and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535, or 0: any free one)")
    return port


def _workers(text: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if workers < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return workers


def _environment_help() -> str:
    lines = [f"  {v.name} (default: {v.default})\n      {v.meaning}" for v in VARIABLES]
    return "environment variables (see README.md, Configuration):\n" + "\n".join(lines)


def _paragraphs(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(paragraph, 88) for paragraph in paragraphs if paragraph)


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    summary: str,
    description: str = "",
) -> argparse.ArgumentParser:
    """A subcommand: `summary` in the list of `accounts-api --help`, and, with `description`,
    atop its own --help."""
    command = commands.add_parser(
        name,
        help=summary,
        description=_paragraphs(f"{summary[0].upper()}{summary[1:]}.", description),
        formatter_class=_HelpFormatter,
    )
    command.set_defaults(handler=handler)
    return command


_EMBEDDED = (
    "With DATABASE_URL unset, the embedded PostgreSQL under ACCOUNTS_API_DATA_DIR is started"
    " (or attached to, when it runs) and migrated first."
)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="accounts-api",
        description=_paragraphs(
            "The billing Accounts API of a VoIP carrier switch (Yeti-Switch admin REST API,"
            " JSON:API 1.0). `accounts-api COMMAND --help` describes each command; every"
            " command reads its configuration from the environment."
        ),
        epilog=_environment_help(),
        formatter_class=_HelpFormatter,
    )
    root.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('accounts-api')}"
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = _command(
        commands,
        "serve",
        serve,
        "run the HTTP service",
        f"{_EMBEDDED} Prints `Serving on URL` once it listens. SIGTERM or Ctrl-C stops it:"
        " it stops accepting, lets the requests in flight finish (at most"
        " ACCOUNTS_API_SHUTDOWN_TIMEOUT seconds) and stops the embedded PostgreSQL if no"
        " other command uses it.",
    )
    serve_parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0 or :: for all)"
    )
    serve_parser.add_argument(
        "--port", type=_port, default=8000, help="TCP port to listen on; 0 takes a free one"
    )
    serve_parser.add_argument(
        "--workers", type=_workers, default=1, help="worker processes (one per core)"
    )
    _command(
        commands,
        "worker",
        worker_command,
        "deliver notifications (e-mails, webhooks) until SIGTERM or SIGINT",
        "Runs beside `serve` or instead of its own delivery (ACCOUNTS_API_DELIVERY=off); any"
        " number may run on any hosts.",
    )
    _command(
        commands,
        "migrate",
        migrate_command,
        "apply the database migrations the database lacks",
        "Run it once per release before starting the new version, with DATABASE_URL set."
        " `serve` migrates the embedded database itself.",
    )
    admin_parser = _command(
        commands,
        "create-admin",
        create_admin,
        "create an admin user",
        f"{_EMBEDDED} An existing user's password is changed with `set-password`.",
    )
    admin_parser.add_argument("username", help="the login name")
    secret = admin_parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password", help="the password (visible in the process list)")
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    admin_parser.add_argument(
        "--allowed-ip",
        action="append",
        default=[],
        metavar="CIDR",
        help="allow requests only from this address or network (repeatable; default: any)",
    )
    _command(
        commands,
        "verify-ledger",
        verify_ledger,
        "check every account's balance against its ledger",
        "Prints each account whose balance is not the sum of its ledger entries and exits 1"
        " if there is one.",
    )
    revoke_parser = _command(
        commands,
        "revoke-tokens",
        revoke_tokens,
        "make every token issued to an admin user so far stop working",
    )
    revoke_parser.add_argument("username", help="the admin user")
    password_parser = _command(
        commands,
        "set-password",
        set_password,
        "set an admin user's password and revoke its tokens",
        "Reads the password from stdin, or asks twice at a terminal.",
    )
    password_parser.add_argument("username", help="the admin user")
    openapi_parser = _command(
        commands,
        "openapi",
        openapi_command,
        "print the OpenAPI document the service serves",
        "Needs no database and no key.",
    )
    openapi_parser.add_argument(
        "--output", metavar="FILE", help="write it to FILE (default: standard output)"
    )
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigurationError as error:
        say(f"error: {error}")
        return 2
    code: int = args.handler(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""The command line: ``python app.py [COMMAND] ...``.

``app.py``'s ``main()`` calls :func:`main` here with its application factory, so serving builds the
app exactly as tests and deployments do. Each subcommand is one ``_add_*`` function: it declares
its arguments on the parser it is given and returns the function that runs it; a new subcommand is
one more such function in :data:`SUBCOMMANDS`.

The commands that read the store (``reviews``, ``remind``, ``audit``) open the store the server uses
in the same mode. In demo mode the demo's store and clock live in the running demo, so ``remind``
and ``demo clock`` ask it over HTTP, at the endpoint its state file names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from aiohttp import web

from bot.admin import ReviewSummary
from bot.clock import SystemClock
from bot.heap import freeze_after_startup
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings
from bot.store import Store, StoreError, open_store
from bot.web.keys import POLLER, STORE
from bot.wiring import microsoft_side

__all__ = ["SUBCOMMANDS", "AppFactory", "CommandError", "main"]

#: ``app.create_app``: what ``serve`` runs (passed in, so this module never imports ``app``).
AppFactory = Callable[..., web.Application]

Command = Callable[[Settings, argparse.Namespace], int]
AddCommand = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], Command]


class CommandError(Exception):
    """A command cannot do what was asked; ``main`` prints the message as one line and exits 1."""


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    serve = sub.add_parser(
        "serve", help="serve the bot on PORT (the default when no command is given)"
    )
    _serve_options(serve)
    return _serve


def _serve_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: `app.py --port N serve` keeps N (a subparser's None would overwrite it).
    parser.add_argument(
        "--port",
        type=int,
        default=argparse.SUPPRESS,
        help="port to listen on (default: PORT, else 3978; 0: any free port, printed)",
    )
    parser.add_argument(
        "--host",
        default=argparse.SUPPRESS,
        help="interface to listen on (default: HOST, else 127.0.0.1 in demo mode, 0.0.0.0 "
        "with credentials)",
    )


def _serve_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    port = getattr(args, "port", None)
    host = getattr(args, "host", None)
    if port is not None:
        if not 0 <= port <= 65535:
            raise CommandError("--port must be a whole number from 0 (any free port) to 65535")
        settings = replace(settings, port=port)
    if host is not None:
        settings = replace(settings, host=host.strip())
    return settings


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts: with port 0 the OS picks the port,
    and the demo must know it before its emulated connector can be told the bot's endpoint."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = _serve_settings(settings, args)
    if settings.workers > 1:
        return _serve_workers(settings, args.create_app)
    sock = _listen(settings.bind_host, settings.port)
    settings = replace(settings, port=sock.getsockname()[1])
    if settings.demo_mode:
        return _serve_demo(settings, sock, args.create_app)
    app = args.create_app(settings)
    freeze_after_startup(app)
    print(
        f"Access Review Bot listening on http://{settings.bind_host}:{settings.port} "
        f"(bot endpoint /api/messages, health /healthz)",
        flush=True,
    )
    web.run_app(app, sock=sock, print=None, access_log=None)
    return 0


def _serve_workers(settings: Settings, create_app: AppFactory) -> int:
    """``WORKERS=N``: N processes on the port; worker 0 runs the background roles."""
    from bot.workers import serve_workers

    if settings.demo_mode:
        raise CommandError(
            "WORKERS > 1 needs a real tenant (MicrosoftAppId): the demo runs in one process"
        )
    count = settings.workers
    # Built once here so that settings the application refuses (a credential that cannot be used)
    # are one line from the parent, not a crash in every worker; the workers build their own.
    create_app(settings, workers=False)

    def listening(port: int) -> None:
        print(
            f"Access Review Bot listening on http://{settings.bind_host}:{port} "
            f"(bot endpoint /api/messages, health /healthz; {count} worker processes)",
            flush=True,
        )

    def ready(index: int) -> None:
        role = "serving, background roles" if index == 0 else "serving"
        print(f"worker {index} (pid {os.getpid()}) ready: {role}", flush=True)

    try:
        return serve_workers(
            count=count,
            host=settings.bind_host,
            port=settings.port,
            make_app=lambda index: create_app(settings, workers=index == 0),
            on_listening=listening,
            on_ready=ready,
        )
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {settings.bind_host}:{settings.port}: {exc.strerror or exc}"
        ) from None


def _serve_demo(settings: Settings, sock: socket.socket, create_app: AppFactory) -> int:
    from bot.demo import DEMO_STATE_FILE, banner, next_steps, start_demo_cloud, wait_until_settled
    from bot.logs import quiet_loggers

    # The emulated Microsoft side and the bot's routine start-up lines (every install, every
    # conversation, every request of the emulated connector) would bury what to do next; they
    # stay available with LOG_LEVEL=DEBUG.
    quiet_loggers(DEMO_QUIET_LOGGERS, level=settings.log_level)
    # The emulated connector reaches the bot where it listens (loopback when that is all of them).
    local = settings.bind_host in ("0.0.0.0", "::", "localhost")  # noqa: S104
    reach = "127.0.0.1" if local else settings.bind_host
    endpoint = f"http://{reach}:{settings.port}/api/messages"
    _check_writable(Path(DEMO_STATE_FILE).parent)
    demo = start_demo_cloud(settings, bot_endpoint=endpoint, state_file=DEMO_STATE_FILE)
    try:
        app = create_app(demo.settings, microsoft=demo.side, clock=demo.clock)
        print(banner(demo, host=settings.bind_host, port=settings.port), flush=True)

        async def announce() -> None:
            await wait_until_settled(
                cycles_run=lambda: app[POLLER].cycles_run,
                queued=lambda: _queued(app),
            )
            reviews = await app[STORE].list_instances(status="InProgress")
            cards = await app[STORE].list_audit(actions=["notified"], limit=100_000)
            print(
                next_steps(port=settings.port, host=reach, reviews=len(reviews), cards=len(cards)),
                flush=True,
            )

        async def announce_ctx(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(announce(), name="demo-next-steps")
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(announce_ctx)
        web.run_app(app, sock=sock, print=None, access_log=None)
    finally:
        demo.stop()
    return 0


def _check_writable(folder: Path) -> None:
    """The demo keeps its store and state file in ``folder``: one line, not a traceback, when it
    cannot (a read-only file system, such as a container's root)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CommandError(
            f"the demo keeps its store and state in {folder.resolve()}/, which cannot be written "
            f"({exc.strerror or type(exc).__name__}): start it from a folder you may write to"
        ) from None


# Loggers whose INFO lines the demo keeps out of the terminal (LOG_LEVEL=DEBUG shows them).
DEMO_QUIET_LOGGERS = (
    "emulator",
    "bot.web.access",
    "bot.teams.bot",
    "bot.notify.notifier",
    "bot.store.sql",
    "bot.graph.client",
)


async def _queued(app: web.Application) -> int:
    # Only what goes out now: a card or reminder waiting for someone's working hours (hours
    # away) is not what the newcomer waits for before "Next:".
    return await app[STORE].count_outbox_due()


def _store_url(settings: Settings, *, must_exist: bool = True) -> str:
    """The store the server uses in this mode: the demo's file without credentials.

    A SQLite file that does not exist is an error, not a new empty store: a command that reads
    must not answer "nothing happened" about a store it just created.
    """
    url = settings.database_url
    if settings.demo_mode:
        from bot.demo import demo_database_url

        url = demo_database_url(settings)
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    if must_exist and path and path != ":memory:" and not os.path.exists(path):
        mode = "the demo" if settings.demo_mode else "the bot"
        raise CommandError(f"no store at {path}: start {mode} first (scripts/run)")
    return url


async def _open_cli_store(settings: Settings) -> Store:
    return await open_store(
        _store_url(settings),
        pool_size=2,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )


def _tenant_for(settings: Settings) -> str:
    side = microsoft_side(settings)
    return side.tenant_id if side is not None else settings.app_tenant_id


def _instance_argument(value: str) -> str:
    from bot.admin import valid_instance_id

    if not valid_instance_id(value):
        raise argparse.ArgumentTypeError(
            "must be a review instance id (letters, digits, '-', '_', '.'): "
            "python app.py reviews lists them"
        )
    return value


def _add_remind(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    remind = sub.add_parser(
        "remind", help="queue a reminder now for everyone with pending items in a review"
    )
    remind.add_argument(
        "--instance", required=True, type=_instance_argument, help="the review instance id"
    )
    remind.add_argument(
        "--now",
        action="store_true",
        help="send at once, even outside the reviewers' working hours or while they snooze",
    )
    return _remind


def _remind(settings: Settings, args: argparse.Namespace) -> int:
    from bot.admin import remind_now

    if settings.demo_mode:
        # The demo's clock runs in the running demo (it may be days ahead of the wall clock), and
        # so does the reminder pass that settles the request: ask it, as an admin would.
        from bot.demo import read_state

        state = read_state() or {}
        running_on = str(state.get("database_url") or "")
        if running_on and running_on != _store_url(settings, must_exist=False):
            raise CommandError(
                f"the demo running in this folder uses the store {running_on}, not "
                f"{_store_url(settings, must_exist=False)} (DATABASE_URL): set DATABASE_URL as "
                "the demo has it"
            )
        query = f"instance={quote(args.instance, safe='')}&now={'true' if args.now else 'false'}"
        answer = _ask_demo("POST", f"/admin/remind?{query}&by=cli")
        if answer is None:
            return 1
        status, body = answer
        if status >= 400:
            print(f"error: {body.get('error', status)}", file=sys.stderr)
            return 1
        _print_reminded(body)
        return 0

    async def run() -> dict[str, Any]:
        store = await _open_cli_store(settings)
        try:
            result = await remind_now(
                store,
                clock=SystemClock(),
                tenant_id=_tenant_for(settings),
                instance_id=args.instance,
                by="cli",
                now=args.now,
                window_h=settings.manual_reminder_window_h,
            )
            return result.as_json()
        finally:
            await store.close()

    try:
        reminded = asyncio.run(run())
    except LookupError as exc:
        raise CommandError(str(exc)) from None
    _print_reminded(reminded)
    return 0


def _print_reminded(result: dict[str, Any]) -> None:
    """What remind-now did, for a person: how many were queued, who was left alone and why."""
    queued = int(result.get("queued") or 0)
    if result.get("mode") == "now":
        when = "to be sent now (working hours and snooze overridden)"
    else:
        when = "each at the reviewer's next working moment, after any snooze"
    if queued:
        print(f"queued a reminder for {queued} reviewer(s), {when}; the running bot sends them")
    else:
        print("queued no reminder")
    already = [r for r in result.get("reviewers") or [] if r.get("status") == "already_reminded"]
    if not already:
        return
    window_h = float(result.get("windowHours") or 0)
    print(
        f"not reminded again, a manual reminder reached them within {window_h:g} h: "
        f"{len(already)} reviewer(s)"
    )
    states = {
        "waiting": "waiting",
        "queued": "queued",
        "sent": "sent",
        "covered": "covered by a scheduled reminder",
        "skipped": "not sent",
        "failed": "failed",
        "unknown": "not described in the audit trail",
    }
    for row in already:
        asked = f"asked for {_when(row.get('requestedAt'))}" if row.get("requestedAt") else ""
        if row.get("requestedBy"):
            asked += f" by {row['requestedBy']}"
        state = states.get(str(row.get("state")), str(row.get("state")))
        if row.get("sentAt"):
            state += f" {_when(row['sentAt'])}"
        if row.get("sendAt"):
            state += f" until {_when(row['sendAt'])}"
        if row.get("note"):
            state += f" ({row['note']})"
        print(f"  {row.get('reviewer')}: " + "; ".join(part for part in (asked, state) if part))


def _when(iso: object) -> str:
    try:
        return datetime.fromisoformat(str(iso)).astimezone(UTC).strftime("%a %d %b %H:%M:%S UTC")
    except ValueError:
        return str(iso)


def _ask_demo(method: str, path: str) -> tuple[int, dict[str, Any]] | None:
    """Call an admin route of the demo running in this folder, where its state file says it
    listens (``--port``, ``HOST``); None (and a line on stderr) if no demo answers there."""
    from bot.demo import DEMO_STATE_FILE, read_state

    state = read_state()
    endpoint = str(state.get("bot_endpoint") or "") if state else ""
    if not endpoint:
        print(
            f"error: no demo is running in this folder (no {DEMO_STATE_FILE}): start it with: "
            "python app.py",
            file=sys.stderr,
        )
        return None
    base = endpoint.removesuffix("/api/messages")

    async def call() -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=base, timeout=120.0, trust_env=False) as client:
            response = await client.request(method, path)
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:200]}
        return response.status_code, body if isinstance(body, dict) else {"error": str(body)}

    try:
        return asyncio.run(call())
    except httpx.TransportError:
        print(f"error: no demo answers at {base} (start it with: python app.py)", file=sys.stderr)
        return None


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import iso_duration, parse_advance
    from bot.web.demo_routes import DEMO_CLOCK_REFUSED

    if not settings.demo_mode:
        print(f"error: {DEMO_CLOCK_REFUSED}", file=sys.stderr)
        return 2
    if args.advance is None:
        answer = _ask_demo("GET", "/admin/demo/clock")
    else:
        try:
            delta = parse_advance(args.advance)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        answer = _ask_demo("POST", f"/admin/demo/clock?advance={iso_duration(delta)}")
    if answer is None:
        return 1
    status, body = answer
    if status >= 400:
        print(f"error: {body.get('error', status)}", file=sys.stderr)
        return 1
    if args.advance is None:
        print(f"demo time {_when(body.get('now'))} ({body.get('offset')} ahead of the wall clock)")
        return 0
    print(f"demo clock moved forward {body.get('advancedBy')}: now {_when(body.get('now'))}")
    queued = body.get("queued") or []
    print(f"reminder pass: {body.get('reminderPass')}; queued {len(queued)} message(s)")
    for due in queued:
        # An escalation goes to the reviewer's manager; the reviewer is who it is about.
        whom = "about" if due.get("kind") == "escalation" else "to"
        print(
            f"  {due.get('kind')} ({due.get('point')}) {whom} {due.get('reviewer')},"
            f" review {due.get('instance')}"
        )
    return 0


def _add_audit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    audit = sub.add_parser(
        "audit", help="export a review's audit trail (audit export --instance ID)"
    )
    audit.add_argument("action", choices=["export"])
    audit.add_argument(
        "--instance", required=True, type=_instance_argument, help="the review instance id"
    )
    audit.add_argument("--format", choices=["csv", "json"], default="csv")
    audit.add_argument("--out", help="write to this file instead of standard output")
    return _audit


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from bot.admin import UnknownInstance, export_audit

    async def run() -> str:
        store = await _open_cli_store(settings)
        try:
            return await export_audit(store, instance_id=args.instance, fmt=args.format)
        finally:
            await store.close()

    try:
        text = asyncio.run(run())
    except UnknownInstance as exc:
        raise CommandError(f"{exc} (python app.py reviews lists the reviews)") from None
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _add_reviews(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    reviews = sub.add_parser(
        "reviews",
        help="list the reviews the bot knows: names, definition and instance ids, status, "
        "stage, due date, decided/total, reviewers with items left",
    )
    reviews.add_argument("--format", choices=["table", "json"], default="table")
    return _reviews


def _reviews(settings: Settings, args: argparse.Namespace) -> int:
    from bot.admin import review_summaries

    async def run() -> list[ReviewSummary]:
        store = await _open_cli_store(settings)
        try:
            return await review_summaries(store)
        finally:
            await store.close()

    summaries = asyncio.run(run())
    if args.format == "json":
        sys.stdout.write(json.dumps([s.as_json() for s in summaries], indent=2) + "\n")
        return 0
    sys.stdout.write(_reviews_table(summaries))
    return 0


def _reviews_table(summaries: Sequence[ReviewSummary]) -> str:
    header = (
        "REVIEW",
        "DEFINITION ID",
        "INSTANCE ID",
        "STATUS",
        "STAGE",
        "DUE (UTC)",
        "DECIDED",
        "REVIEWERS PENDING",
    )
    rows = [
        (
            s.name,
            s.definition_id,
            s.instance_id,
            s.status,
            s.stage or "-",
            s.due.strftime("%Y-%m-%d %H:%M") if s.due else "-",
            f"{s.decided}/{s.total}",
            str(s.reviewers_pending),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    if not rows:
        lines.append("(no review yet: the bot lists what its discovery found)")
    return "\n".join(lines) + "\n"


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    sub.add_parser(
        "doctor", help="check the tenant's setup: tokens, permissions, consent, SSO, Teams app"
    )
    return _doctor


def _doctor(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.doctor import run_doctor

    return asyncio.run(run_doctor(settings, out=sys.stdout))


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    demo = sub.add_parser(
        "demo",
        help="demo mode only: move the running demo's clock (demo clock +3d) to watch reminders",
    )
    demo.add_argument("action", choices=["clock"])
    demo.add_argument(
        "advance",
        nargs="?",
        help="how far forward: +3d, 8h, 90m, P3D, PT4H (leave out to show the demo's time)",
    )
    return _demo


def _add_manifest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    manifest = sub.add_parser(
        "manifest",
        help="build or validate the Teams app package (python app.py manifest build --out app.zip)",
        add_help=False,
    )
    manifest.add_argument("manifest_args", nargs=argparse.REMAINDER)
    manifest.set_defaults(passthrough=True)
    return _manifest


def _manifest(_settings: Settings, args: argparse.Namespace) -> int:
    from manifest import main as manifest_main

    return manifest_main(list(args.manifest_args), os.environ)


SUBCOMMANDS: tuple[AddCommand, ...] = (
    _add_serve,
    _add_reviews,
    _add_remind,
    _add_audit,
    _add_doctor,
    _add_manifest,
    _add_demo,
)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Access Review Bot: Microsoft Entra ID access reviews done in Microsoft Teams.",
        epilog="Configuration comes from the environment and .env; see .env.example.",
    )
    # `python app.py --port 3979` serves, as `python app.py serve --port 3979` does.
    _serve_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, Command] = {}
    for add in SUBCOMMANDS:
        before = set(sub.choices)
        run = add(sub)
        for name in set(sub.choices) - before:
            commands[name] = run
    return parser, commands


def main(argv: Sequence[str] | None, *, create_app: AppFactory) -> int:
    """Parse the command line, load and validate settings, run the command; ``create_app`` builds
    the application that ``serve`` runs."""
    parser, commands = _parser()
    args, unknown = parser.parse_known_args(argv)
    args.create_app = create_app
    if getattr(args, "passthrough", False):
        # Subcommands with their own parser (manifest) get every argument after their name.
        args.manifest_args = list(unknown) + list(args.manifest_args)
    elif unknown:
        parser.error("unrecognized arguments: " + " ".join(unknown))
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    command = commands[args.command or "serve"]
    try:
        return command(settings, args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SettingsError as exc:
        # Found when the command starts (a credential that cannot be used): one line, no trace.
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"store error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130

"""``python -m emulator --seed demo --port 0``: run the emulated Microsoft cloud standalone.

Prints one JSON line (URLs, tenant id, bot app id and secret, CA path) and serves until
SIGINT/SIGTERM.

``python -m emulator token --app | --user NAME [--curl PATH | --curl DEFINITION INSTANCE]``:
a token for the emulated Graph of the running demo (``python app.py`` without credentials), so
what the bot wrote can be read from outside: the decisions of a review, ``reviewedBy`` included.
The demo's state file (``data/demo-state.json``) says where its emulator is; the token comes from
the emulated token endpoint by the documented grants (client credentials for ``--app``, a refresh
token the demo obtained on-behalf-of each person for ``--user``). The token goes to stdout alone
(``TOKEN=$(python -m emulator token --app)``); ``--curl`` prints a ready ``curl`` line instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shlex
import signal
import ssl
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from emulator.profiles import PROFILES
from emulator.seeds import DEFAULT_BOT_APP_ID, SEEDS
from emulator.server import EmulatorCloud, EmulatorConfig

log = logging.getLogger("emulator")


def _seed_param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # plain strings need no quotes
    return name, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--seed", default="demo", choices=sorted(SEEDS))
    parser.add_argument(
        "--seed-param",
        action="append",
        type=_seed_param,
        default=[],
        metavar="NAME=VALUE",
        help="seed keyword argument, e.g. decisions=100000 (JSON or text)",
    )
    parser.add_argument("--port", type=int, default=0, help="Graph port (0 = any free port)")
    parser.add_argument("--login-port", type=int, default=0)
    parser.add_argument("--connector-port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--bot-app-id", default=DEFAULT_BOT_APP_ID)
    parser.add_argument(
        "--bot-app-secret", default=None, help="default: a random secret, printed in the JSON line"
    )
    parser.add_argument(
        "--bot-endpoint",
        default=None,
        help="the bot's /api/messages URL (for installationUpdate delivery)",
    )
    parser.add_argument("--anonymous-connector", action="store_true")
    parser.add_argument("--graph-latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--profile",
        default="realistic",
        choices=PROFILES,
        help="realistic: occasional transient Graph 503/504 and connector 412/502/504 "
        "(default); deterministic: none",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the cloud, print the JSON line, wait for a stop signal."""
    config = EmulatorConfig(
        seed=args.seed,
        seed_params=dict(args.seed_param),
        bot_app_id=args.bot_app_id,
        bot_endpoint=args.bot_endpoint,
        anonymous_connector=args.anonymous_connector,
        graph_latency_s=args.graph_latency_ms / 1000.0,
        profile=args.profile,
        host=args.host,
        graph_port=args.port,
        login_port=args.login_port,
        connector_port=args.connector_port,
    )
    if args.bot_app_secret:
        config.bot_app_secret = args.bot_app_secret
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with EmulatorCloud(config) as cloud:
        sys.stdout.write(json.dumps(cloud.describe()) + "\n")
        sys.stdout.flush()
        await stop.wait()
    log.info("emulator stopped")


# -- token ------------------------------------------------------------------------------------

DEMO_STATE_FILE = "data/demo-state.json"
GRAPH_SCOPE_DEFAULT = "https://graph.microsoft.com/.default"
_REVIEWS_ROOT = "/v1.0/identityGovernance/accessReviews/definitions"


class TokenError(Exception):
    """The token could not be had; the message is one line for the terminal."""


def parse_token_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulator token",
        description="A token for the running demo's emulated Graph (see python -m emulator -h).",
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--app", action="store_true", help="the bot app's own (app-only) token")
    who.add_argument(
        "--user",
        metavar="NAME",
        help="a demo person's delegated token: first name, display name, UPN or object id",
    )
    parser.add_argument(
        "--curl",
        nargs="+",
        metavar="PATH",
        help="print a curl command instead: a Graph path (/v1.0/...) or DEFINITION-ID "
        "INSTANCE-ID for that review's decisions",
    )
    parser.add_argument(
        "--state",
        default=DEMO_STATE_FILE,
        help=f"the demo's state file (default {DEMO_STATE_FILE})",
    )
    return parser.parse_args(argv)


def _read_state(path: str) -> Mapping[str, Any]:
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TokenError(
            f"no demo state at {path}: start the demo first (scripts/run, in this folder)"
        ) from None
    except json.JSONDecodeError as exc:
        raise TokenError(f"{path} is not a demo state file ({exc.msg})") from None
    if not isinstance(state, dict) or not state.get("login_url"):
        raise TokenError(f"{path} is not a demo state file")
    return state


def _person(state: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    wanted = name.strip().lower()
    people = [p for p in state.get("people") or [] if isinstance(p, dict)]
    for person in people:
        upn = str(person.get("userPrincipalName") or "").lower()
        display = str(person.get("name") or "").lower()
        if wanted in (str(person.get("id")).lower(), upn, display):
            return person
    matches = [
        p
        for p in people
        if str(p.get("name") or "").lower().split(" ")[:1] == [wanted]
        or str(p.get("userPrincipalName") or "").lower().split("@")[0] == wanted
    ]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(str(p.get("name")) for p in people if p.get("refresh_token"))
    raise TokenError(f"no single demo person called {name!r}; try one of: {known}")


async def fetch_token(state: Mapping[str, Any], *, user: str | None) -> str:
    """An access token for the emulated Graph, from the emulated token endpoint."""
    form = {"client_id": str(state["bot_app_id"]), "client_secret": str(state["bot_app_secret"])}
    if user is None:
        form |= {"grant_type": "client_credentials", "scope": GRAPH_SCOPE_DEFAULT}
    else:
        person = _person(state, user)
        if not person.get("refresh_token"):
            raise TokenError(f"the demo has no token for {person.get('name')} (not a member)")
        form |= {"grant_type": "refresh_token", "refresh_token": str(person["refresh_token"])}
    context = ssl.create_default_context(cafile=str(state["ca_pem_path"]))
    url = f"{state['login_url']}/{state['tenant_id']}/oauth2/v2.0/token"
    try:
        async with httpx.AsyncClient(verify=context, trust_env=False, timeout=10.0) as http:
            response = await http.post(url, data=form)
    except httpx.TransportError as exc:
        raise TokenError(
            f"the demo's emulator does not answer at {state['login_url']} ({type(exc).__name__}):"
            " is the demo still running?"
        ) from None
    body = response.json() if "json" in response.headers.get("content-type", "") else {}
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(token, str):
        reason = body.get("error_description") or body.get("error") if body else response.text
        raise TokenError(f"the emulated token endpoint said {response.status_code}: {reason}")
    return token


def graph_path(parts: list[str], *, as_user: bool) -> str:
    """``--curl`` arguments as a Graph path.

    A review's decisions are listed whole for the app; a person reads their own share through
    ``filterByCurrentUser(on='reviewer')``, as Graph requires of a reviewer without an
    administrator role.
    """
    if len(parts) == 1 and parts[0].startswith("/"):
        return parts[0]
    if len(parts) == 2:
        definition, instance = (quote(part, safe="") for part in parts)
        path = f"{_REVIEWS_ROOT}/{definition}/instances/{instance}/decisions"
        return path + "/filterByCurrentUser(on='reviewer')" if as_user else path
    raise TokenError("--curl takes a Graph path (/v1.0/...) or DEFINITION-ID INSTANCE-ID")


def token_main(argv: list[str]) -> int:
    """``python -m emulator token ...``."""
    args = parse_token_args(argv)
    try:
        state = _read_state(args.state)
        path = graph_path(args.curl, as_user=not args.app) if args.curl else None
        token = asyncio.run(fetch_token(state, user=None if args.app else args.user))
    except TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if path is None:
        sys.stdout.write(token + "\n")
        return 0
    command = [
        "curl",
        "-s",
        "--cacert",
        str(state["ca_pem_path"]),
        "-H",
        f"Authorization: Bearer {token}",
        f"{state['graph_url']}{path}",
    ]
    sys.stdout.write(shlex.join(command) + "\n")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["token"]:
        sys.exit(token_main(arguments[1:]))
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

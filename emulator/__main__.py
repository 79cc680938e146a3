"""``python -m emulator --seed demo --port 0``: run the emulated Microsoft cloud standalone.

Prints one JSON line (URLs, tenant id, bot app id and secret, CA path) and serves until
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

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


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

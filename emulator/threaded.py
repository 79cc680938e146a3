"""Running the emulated cloud on its own thread and event loop.

The bot makes a few *synchronous* HTTP calls by design of its libraries: botbuilder fetches the
channel's OpenID metadata and keys with ``requests``, and msal acquires tokens with ``requests``.
When the emulator shares the bot's event loop, such a call blocks the very loop that would answer
it. Running the emulator on a thread of its own — as the real services run elsewhere — removes
that deadlock for tests and for the demo.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from emulator.server import EmulatorCloud, EmulatorConfig

__all__ = ["EmulatorThread"]

T = TypeVar("T")


class EmulatorThread:
    """An :class:`EmulatorCloud` served from a background thread.

    ``with EmulatorThread(config) as cloud: ...`` (or ``async with``) starts it and stops it.
    Synchronous emulator calls (``cloud.tenant.record_decision(...)``) can be made from any thread;
    coroutines of the emulator must run on its loop: :meth:`call` (blocking) or :meth:`acall`.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.cloud = EmulatorCloud(config or EmulatorConfig())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)
        self._started = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self, timeout_s: float = 60.0) -> EmulatorCloud:
        self._thread.start()
        self._started = True
        self.call(self.cloud.start(), timeout_s=timeout_s)
        return self.cloud

    def stop(self, timeout_s: float = 30.0) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self.call(self.cloud.close(), timeout_s=timeout_s)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)
            self._loop.close()

    def call(self, coroutine: Coroutine[Any, Any, T], *, timeout_s: float = 30.0) -> T:
        """Run a coroutine on the emulator's loop and wait for it (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    async def arun(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a plain function on the emulator's loop (for ones that schedule work there)."""

        async def wrapper() -> T:
            return fn(*args, **kwargs)

        return await self.acall(wrapper())

    async def acall(self, coroutine: Coroutine[Any, Any, T], *, timeout_s: float = 30.0) -> T:
        """Like :meth:`call`, awaited from another event loop."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)

    def __enter__(self) -> EmulatorCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> EmulatorCloud:
        return await asyncio.get_running_loop().run_in_executor(None, self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

"""``WORKERS=N``: N serving processes on one port (``SO_REUSEPORT``), one of them running the
background roles.

The parent process serves nothing. It binds the port once (so that a port in use is one error
line, and ``PORT=0`` picks a free port that every worker then shares), forks N workers, and
watches them:

- Each worker binds its own listening socket to the same address with ``SO_REUSEPORT``; the
  kernel spreads incoming connections over the workers' sockets. The parent's socket is bound but
  never listens, so it takes no connection; it keeps the port reserved while workers restart.
- Worker 0 runs the background roles (discovery, the outbox, decision retries, reminders) under
  the same leases as separate replicas do (docs/scale-out.md); the other workers only serve
  requests. The store is the only memory the workers share: SQLite in WAL mode (cross-process
  safe) or PostgreSQL.
- A worker that dies is started again under the same index. More than ``restart_limit`` deaths
  within ``restart_window_s`` mean something is wrong with every start (a bad database, a
  crash at start-up): the parent stops the other workers and exits with status 1.
- SIGTERM or SIGINT to the parent: it forwards SIGTERM to every worker (each shuts down as a
  single process does: in-flight requests finish, cleanup contexts run), waits up to
  ``stop_timeout_s``, kills the ones still running, and exits 0.

Workers are forked (Linux): the parent imports the application but starts nothing, no event
loop and no thread, before forking.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from bot.heap import freeze_after_startup

__all__ = ["WorkerPool", "reuse_port_socket", "serve_workers"]

log = logging.getLogger("bot.workers")

#: Builds the application of worker ``index`` (0 runs the background roles).
AppFactory = Callable[[int], web.Application]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def reuse_port_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (listening when ``listen``).

    Raises :class:`OSError` when the address cannot be bound (in use without ``SO_REUSEPORT``,
    not an address of this machine).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def _worker_main(
    index: int,
    host: str,
    port: int,
    make_app: AppFactory,
    on_ready: Callable[[int], None] | None,
) -> None:
    """The body of a worker process (after the fork)."""
    # The parent's signal handling is not the worker's: aiohttp installs its own for SIGINT and
    # SIGTERM (a graceful exit), and the parent's wake-up descriptor belongs to the parent.
    signal.set_wakeup_fd(-1)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sock = reuse_port_socket(host, port, listen=True)
    app = make_app(index)
    freeze_after_startup(app)

    def ready(_message: str) -> None:
        if on_ready is not None:
            on_ready(index)

    web.run_app(app, sock=sock, print=ready, access_log=None, shutdown_timeout=10.0)


@dataclass
class WorkerPool:
    """The parent's side: start, watch, restart and stop the workers."""

    count: int
    host: str
    port: int
    make_app: AppFactory
    #: Called in each worker once it serves (with its index).
    on_ready: Callable[[int], None] | None = None
    restart_limit: int = 5
    restart_window_s: float = 60.0
    stop_timeout_s: float = 20.0
    _processes: dict[int, BaseProcess] = field(default_factory=dict)
    _deaths: deque[float] = field(default_factory=deque)

    def _start(self, index: int) -> None:
        context = multiprocessing.get_context("fork")
        process = context.Process(
            target=_worker_main,
            args=(index, self.host, self.port, self.make_app, self.on_ready),
            name=f"worker-{index}",
            daemon=False,
        )
        process.start()
        self._processes[index] = process
        log.info("worker %d started (pid %s)", index, process.pid)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0) or until workers keep dying (1)."""
        waker_r, waker_w = socket.socketpair()
        waker_r.setblocking(False)
        waker_w.setblocking(False)
        stopping: list[int] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            stopping.append(signum)

        previous = {signum: signal.signal(signum, on_signal) for signum in _STOP_SIGNALS}
        previous_fd = signal.set_wakeup_fd(waker_w.fileno(), warn_on_full_buffer=False)
        status = 0
        try:
            for index in range(self.count):
                self._start(index)
            while not stopping:
                sentinels = {p.sentinel: i for i, p in self._processes.items()}
                ready = multiprocessing.connection.wait([*sentinels, waker_r])
                with contextlib.suppress(BlockingIOError):
                    waker_r.recv(4096)
                if stopping:
                    break
                for sentinel in ready:
                    if sentinel is waker_r or sentinel not in sentinels:
                        continue
                    index = sentinels[sentinel]
                    if not self._restart(index):
                        status = 1
                        stopping.append(0)
                        break
        finally:
            self._stop_all()
            signal.set_wakeup_fd(previous_fd)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            waker_r.close()
            waker_w.close()
        return status

    def _restart(self, index: int) -> bool:
        """Worker ``index`` ended: start it again, or False when they die too often."""
        process = self._processes[index]
        process.join()
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > self.restart_window_s:
            self._deaths.popleft()
        if len(self._deaths) > self.restart_limit:
            log.error(
                "worker %d (pid %s) exited with status %s: %d worker exits within %.0f s, stopping",
                index,
                process.pid,
                process.exitcode,
                len(self._deaths),
                self.restart_window_s,
            )
            return False
        log.warning(
            "worker %d (pid %s) exited with status %s; starting it again",
            index,
            process.pid,
            process.exitcode,
        )
        self._start(index)
        return True

    def _stop_all(self) -> None:
        live = [p for p in self._processes.values() if p.exitcode is None]
        for process in live:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for process in live:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in live:
            if process.exitcode is None:
                log.warning("worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
        self._processes.clear()

    def pids(self) -> list[int]:
        return [p.pid for p in self._processes.values() if p.pid is not None]


def serve_workers(
    *,
    count: int,
    host: str,
    port: int,
    make_app: AppFactory,
    on_listening: Callable[[int], None] | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> int:
    """Serve ``make_app(i)`` for i in 0..count-1 on ``host:port``; the exit status.

    ``on_listening(port)`` runs in the parent once the port is known (``port=0``: a free port);
    ``on_ready(i)`` in worker i once it accepts connections. Raises :class:`OSError` when the
    address cannot be bound.
    """
    holder = reuse_port_socket(host, port, listen=False)
    try:
        port = holder.getsockname()[1]
        if on_listening is not None:
            on_listening(port)
        pool = WorkerPool(count=count, host=host, port=port, make_app=make_app, on_ready=on_ready)
        return pool.run()
    finally:
        holder.close()

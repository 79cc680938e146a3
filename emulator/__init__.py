"""A local, faithful copy of the Microsoft services the Access Review Bot uses.

Graph, Entra ID and the Bot Connector, for tests, benchmarks and the demo. Start it with
:class:`emulator.server.EmulatorCloud` or ``python -m emulator --seed demo --port 0``.
"""

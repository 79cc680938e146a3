"""``python -m bench NAME [args]``: run one benchmark by name (``--list``: the names).

Each benchmark is a module with ``main(argv: list[str]) -> int``; add new ones to ``BENCHMARKS``.
Modules are imported only when chosen, so one benchmark's dependencies never slow another.
"""

from __future__ import annotations

import importlib
import sys

#: Benchmark name → module providing ``main(argv) -> int``.
BENCHMARKS: dict[str, str] = {
    "graph": "bench.graph",
    "discovery": "bench.discovery",
    "fanout": "bench.fanout",
    "decide": "bench.decide",
    "fuzz": "bench.fuzz",
    "soak": "bench.soak",
}


def main(argv: list[str]) -> int:
    """Dispatch ``NAME [args]``; ``--list`` prints the names, one a line (CI iterates them)."""
    if argv and argv[0] == "--list":
        for name in sorted(BENCHMARKS):
            print(name)
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: python -m bench NAME [args] | --list   (NAME: "
            + ", ".join(sorted(BENCHMARKS))
            + ")"
        )
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(
            f"unknown benchmark {name!r}; choose one of: {', '.join(sorted(BENCHMARKS))}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(BENCHMARKS[name])
    result: int = module.main(rest)
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

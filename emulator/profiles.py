"""Emulator profiles: how hard the emulated services are on their clients.

Every deterministic behaviour of the real services is the emulator's default in both profiles:
Graph throttling by the documented identity and access limits, Bot Connector 429s without
``Retry-After``, recurring reviews and every instance status on the clock, the permission rules
for writes and the query limits. A profile only decides the *random* transient failures:

* ``deterministic`` (``EmulatorConfig``'s default, for tests): none.
* ``realistic`` (the default of ``python -m emulator``, the demo and the benchmarks): what a busy
  real service does now and then — Graph answers 0.3 % of requests with 503 and 0.2 % with 504;
  the Bot Connector answers 0.3 % of conversation requests with 412, 0.2 % with 502 and 0.2 %
  with 504 (the statuses the Teams rate-limit page lists as retryable). Each rule draws from its
  own generator seeded from ``EmulatorConfig.profile_seed``, so the same sequence of requests
  meets the same failures. Graph's transient 503/504 carry no ``Retry-After`` (the docs promise
  one only on 429).
"""

from __future__ import annotations

from typing import Literal, get_args

from emulator.faults import FaultRule

__all__ = ["PROFILES", "Profile", "profile_fault_rules"]

Profile = Literal["deterministic", "realistic"]
PROFILES: tuple[str, ...] = get_args(Profile)

# (service, status, share of requests, path the rule applies to)
_REALISTIC: tuple[tuple[str, int, float, str], ...] = (
    ("graph", 503, 0.003, r"^/(v1\.0|beta)/"),
    ("graph", 504, 0.002, r"^/(v1\.0|beta)/"),
    # Only the conversation API: the channel's OpenID metadata beside it must stay reachable.
    ("connector", 412, 0.003, r"^/v3/conversations"),
    ("connector", 502, 0.002, r"^/v3/conversations"),
    ("connector", 504, 0.002, r"^/v3/conversations"),
)


def profile_fault_rules(profile: str, *, seed: int) -> list[FaultRule]:
    """The fault rules a profile installs (none for ``deterministic``)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(PROFILES)}")
    if profile == "deterministic":
        return []
    return [
        FaultRule(
            kind="status",
            service=service,
            status=status,
            probability=share,
            path_regex=path,
            seed=seed * 1_000 + number,
        )
        for number, (service, status, share, path) in enumerate(_REALISTIC)
    ]

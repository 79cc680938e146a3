"""Exponential backoff with full jitter, for every retry that has no ``Retry-After`` to honour.

A delay drawn uniformly from ``[0, min(cap, base · 2^n)]`` after the n-th failure in a row:
of the usual variants it spreads many clients retrying at once best (AWS Architecture Blog,
"Exponential Backoff And Jitter", 2015), and Teams asks bots for exponential backoff with
random jitter (msteams-docs ``bots/how-to/rate-limit.md``).
"""

from __future__ import annotations

import random

__all__ = ["full_jitter_s"]


def full_jitter_s(failures: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """A delay drawn from ``[0, min(cap_s, base_s · 2^failures)]`` seconds."""
    ceiling = min(cap_s, base_s * 2.0 ** min(max(failures, 0), 30))
    return rng.uniform(0.0, ceiling)

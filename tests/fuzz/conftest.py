"""Hypothesis profiles for the fuzzing suite and the running apps it fuzzes.

``ci`` (the default): derandomized — the same cases on every run and every machine, no example
database, no deadline (the machine is shared; speed is measured by ``python -m bench fuzz``).
``HYPOTHESIS_PROFILE=explore`` draws new random cases each run, for looking around by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.rig import FuzzRig

_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("explore", derandomize=False, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzRig]:
    with FuzzRig(data_dir=tmp_path_factory.mktemp("fuzz")) as running:
        yield running

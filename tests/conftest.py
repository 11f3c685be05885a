"""Fixtures and Hypothesis profiles for the whole suite.

``backend`` runs a behavioural test once on the SimPy clock and once on asyncio, ``cluster``
a multi-node test once on simulated hosts and once on asyncio sockets (a module may
override it: the network's own tests add uvloop).  The "ci"
profile is derandomized so a CI run is reproducible (chosen when CI is set);
HYPOTHESIS_PROFILE overrides the choice.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from support import AsyncioBackend, SimBackend

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(params=["sim", "asyncio"])
def backend(request: pytest.FixtureRequest):
    b = SimBackend() if request.param == "sim" else AsyncioBackend()
    yield b
    b.close()


@pytest.fixture(params=["sim", "asyncio"])
def cluster(request: pytest.FixtureRequest):
    from network_support import make_cluster

    c = make_cluster(request.param)
    yield c
    c.close()

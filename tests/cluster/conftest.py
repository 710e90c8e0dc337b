"""Fixtures of the cluster tests: a running Kamailio + workers cluster
(:mod:`tests.cluster.kamailio`) on a fresh PostgreSQL database and Redis."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.kamailio import KAMAILIO, SIPP, Cluster
from tests.conftest import skip_or_fail
from tests.db import postgres_url


def cluster_services() -> tuple[str, str]:
    """PostgreSQL admin URL and Redis URL for a cluster test (skip or fail without)."""
    if not (os.access(KAMAILIO, os.X_OK) and shutil.which("kamcmd")):
        skip_or_fail("kamailio is not installed (Debian package kamailio; make system-deps)")
    if not os.access(SIPP, os.X_OK):
        skip_or_fail("sipp is not installed (Debian package sip-tester)")
    pg = postgres_url()
    redis = os.environ.get("FLIREO_TEST_REDIS_URL")
    if not pg or not redis:
        skip_or_fail("FLIREO_TEST_POSTGRES_URL and FLIREO_TEST_REDIS_URL must be set")
    assert pg
    assert redis
    return pg, redis


@pytest.fixture
def kamailio_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Kamailio in front of three workers (127.0.0.2-4), provisioned, all probed up."""
    pg, redis = cluster_services()
    cluster = Cluster(tmp_path, pg, redis, size=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()

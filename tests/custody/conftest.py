"""Fixtures for the custody tests: a real SoftHSM2 token and a real EVM per test."""
from __future__ import annotations

import shutil
from typing import Iterator

import pytest

from custody.pkcs11_signer import find_softhsm_module
from tests.custody.world import World


@pytest.fixture(scope="session", autouse=True)
def _softhsm_present() -> None:
    if find_softhsm_module() is None or shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM2 is not installed: run ./.ci/services (Debian package softhsm2)")


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()

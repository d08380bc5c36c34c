"""The helm fixture: a pinned helm with a private HOME, or a skip (a failure in CI)."""

from __future__ import annotations

import os

import pytest

from tests.chart.helm import Helm, find_helm


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = find_helm()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("helm is missing: scripts/fetch-helm puts it in .cache/bin/helm")
        pytest.skip("helm is missing: run scripts/fetch-helm (it puts helm in .cache/bin/helm)")
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))

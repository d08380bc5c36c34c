"""The end-to-end tests' pods fork from the worker's fork server (see ``ForkedPods``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import argo_interpreter, forks
from tests.argo_interpreter import ForkedPods


@pytest.fixture(scope="module", autouse=True)
def forked_pods() -> Iterator[None]:
    """Every compiled run's ``ai-operator`` pods fork from one server that imported the product.

    Module-scoped, so that it is unset again before any test outside ``tests/e2e`` runs; the
    server itself is the worker's, shared with the commands the tests run.
    """
    with ForkedPods(forks.shared()) as pods:
        argo_interpreter.DEFAULT_PODS = pods
        try:
            yield
        finally:
            argo_interpreter.DEFAULT_PODS = None

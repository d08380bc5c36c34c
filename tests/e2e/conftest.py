"""The end-to-end tests' pods: one fork server for the session (see ``ForkedPods``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import argo_interpreter
from tests.argo_interpreter import ForkedPods


@pytest.fixture(scope="session", autouse=True)
def forked_pods() -> Iterator[None]:
    """Every compiled run's ``ai-operator`` pods fork from one server that imported the product."""
    with ForkedPods() as pods:
        argo_interpreter.DEFAULT_PODS = pods
        try:
            yield
        finally:
            argo_interpreter.DEFAULT_PODS = None

"""The one import package: everything is imported as ``ai_operator``, never by its folder's name.

In a checkout the folders ``jobs/`` and ``pipelines/`` are also importable on their own (the
repository's root is on the path); a module imported that way would be a second copy, with state
of its own (the log redactor's secrets, the settings). So no code does.
"""

from __future__ import annotations

import re

from tests.conftest import ROOT

BARE = re.compile(r"^\s*(from|import) (jobs|pipelines)\b|\"-m\", \"(jobs|pipelines)\"", re.M)


def test_no_module_imports_a_folder_by_its_bare_name() -> None:
    """Product, tests, benchmarks and scripts import (and ``python -m``) ``ai_operator.jobs``
    and ``ai_operator.pipelines``."""
    sources = [
        path
        for folder in ("jobs", "pipelines", "tests", "benchmarks", "scripts")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and (path.suffix == ".py" or path.parent.name == "scripts")
    ]
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if BARE.search(path.read_text(encoding="utf-8", errors="ignore"))
    ]
    assert offenders == []


def test_the_package_holds_both_folders() -> None:
    """``ai_operator.jobs`` and ``ai_operator.pipelines`` are the repository's folders."""
    import ai_operator.jobs
    import ai_operator.pipelines

    assert ai_operator.__doc__
    for part, folder in ((ai_operator.jobs, "jobs"), (ai_operator.pipelines, "pipelines")):
        assert part.__file__ is not None
        assert (ROOT / folder / "__init__.py").samefile(part.__file__)

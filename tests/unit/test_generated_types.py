"""The committed sgqlc types are exactly what the pinned GitHub schema generates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_github_types_match_the_pinned_schema() -> None:
    """Regenerating jobs/clients/github/github_schema.py changes nothing (drift fails)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "generate-github-types"), "--check"],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr

"""``python -m pipelines``: the ai-operator command."""

from pipelines.cli import main

main()

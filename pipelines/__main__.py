"""``python -m ai_operator.pipelines``: the ai-operator command."""

from ai_operator.pipelines.cli import main

main()

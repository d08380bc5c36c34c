"""``ai-operator explain``: why a rule does or does not act on a pull request right now."""

"""``ai-operator backtest``: a rule's decisions on pull requests people settled, scored."""

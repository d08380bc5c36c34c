"""``ai-operator test RULE.yaml --cases CASES.yaml``: unit tests for a rule's instruction.

For each case (:mod:`jobs.rules.cases`) ``run`` renders the real prompt, asks the model through the
real client, validates the answer, applies the guardrails and compares the final action with the
expected ones. ``recording`` stores answers keyed by model and prompt (``--record``) and answers
offline from them (``--replay``); ``view`` shows the outcome as a table, JSON or JUnit XML.
"""

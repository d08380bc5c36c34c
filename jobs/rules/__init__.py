"""The rule itself: model, CRD, rule files, validation, schedule, templates, and its encoding.

Nothing here talks to GitHub, a model or a cluster: it defines what a valid
PRReconciliationRule is and how it is read, checked, scheduled and carried into a workflow.
"""

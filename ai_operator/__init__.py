"""ai-operator: let an AI settle pull requests safely, under rules platform teams write.

The one import package the project installs. Its two parts are the repository's top-level
folders, linked here: :mod:`ai_operator.jobs` (the reconciliation a pass runs: rules, the pure
decision core, the clients, the commands) and :mod:`ai_operator.pipelines` (rules compiled into
Argo CronWorkflows or CronJobs, and the controller that applies them); ``pipelines`` imports
``jobs``, never the reverse. Docstrings name modules by their folder: ``jobs.policy.reuse`` is
``ai_operator.jobs.policy.reuse``.
"""

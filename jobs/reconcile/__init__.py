"""A reconciliation pass: gather, ask, act, and the report of what was done.

``ports`` (what a pass needs from GitHub and a model), ``gather``, ``ask``, ``act``, ``apply``
(the only module that changes GitHub), ``results``, ``run`` (the whole pass in one process),
``steps`` (the same stages, one per pipeline pod) and ``report`` (tables, JSON, metrics).
"""

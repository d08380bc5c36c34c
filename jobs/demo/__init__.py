"""``ai-operator demo``: the real product, end to end, with no token, no network and no cluster.

    sandbox GitHub (loopback, GitHub's real schema)  <- GitHubClient (sgqlc, retries, mutations)
    stand-in model (loopback, Anthropic's wire format) <- the Anthropic SDK, unless AI_TOKEN is set

``run`` runs the example rules (or the ``--rule`` files) over the sample pull requests of
:mod:`jobs.sandbox.samples` three times: a dry run, the real pass, and the same pass again, which
must change nothing. ``view`` shows what happened as tables or one JSON document.
"""

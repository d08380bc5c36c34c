"""The sandbox: the other side of the wire, on 127.0.0.1, to try the product without credentials.

``github`` serves GitHub's GraphQL API, executing GitHub's real schema (``schema``, shipped with
the package) over an in-memory world (``github_world``, ``github_search``, ``github_graphql``);
``samples`` fills it with sample repositories and pull requests. ``llm`` speaks the Anthropic and
OpenAI wire formats; ``standin`` is the stand-in model that answers there when no real model is
configured, and says so. ``ai-operator demo`` and ``ai-operator test`` use it, and so do the tests.
Nothing here reaches the network beyond loopback or imports the product's clients.
"""

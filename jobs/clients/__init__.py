"""All I/O: GitHub (GraphQL), the models (Anthropic, OpenAI-compatible) and the Pushgateway.

Clients map what they read into our own types at once; no SDK type leaves its client.
"""

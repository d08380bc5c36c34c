"""GitHub's GraphQL schema as the sandbox ships it: the whole introspection result, compacted.

``github-schema.json.gz`` (package data, about 85 kB) is GitHub's schema from npm
``@octokit/graphql-schema`` (the version in :data:`SOURCE`) with every ``description`` removed
and no whitespace: every type, field, argument, enum value and directive is kept, so documents
validate and execute exactly as against the full schema. ``scripts/generate-sandbox-schema``
writes it from the pinned download and, with ``--check``, fails when it drifts.
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources
from typing import Any, cast

from graphql import GraphQLSchema, IntrospectionQuery, build_client_schema

SOURCE = "@octokit/graphql-schema 15.26.1"
FILE_NAME = "github-schema.json.gz"


def compact(introspection: dict[str, Any]) -> dict[str, Any]:
    """The introspection result without descriptions, tagged with :data:`SOURCE`."""
    return {"source": SOURCE, "__schema": _without_descriptions(introspection["__schema"])}


def encode(compacted: dict[str, Any]) -> bytes:
    """The file's bytes: compact JSON, gzipped without a timestamp (the same input, same bytes)."""
    text = json.dumps(compacted, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def shipped_introspection() -> dict[str, Any]:
    """The compacted introspection result shipped with the package."""
    data = resources.files(__package__).joinpath(FILE_NAME).read_bytes()
    loaded: dict[str, Any] = json.loads(gzip.decompress(data))
    return loaded


@functools.cache
def github_schema() -> GraphQLSchema:
    """GitHub's schema, built once per process (about 0.2 s)."""
    introspection = cast(IntrospectionQuery, shipped_introspection())
    return build_client_schema(introspection, assume_valid=True)


def _without_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [_without_descriptions(item) for item in value]
    return value

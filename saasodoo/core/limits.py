"""Bounds on what saasodoo parses from outside: JSON bodies, override values, manifests.

A parser fed a 2 KB body of 1,000 nested arrays recurses 1,000 deep; whatever walks the
result afterwards (validation, the values merge, the JSON dump into an annotation) does
too, and Python's recursion limit turns that into a crash with a traceback. So every
document from outside is parsed by ``load_json`` (orjson: C, itself bounded at 1,024
levels, never a RecursionError) and then held to ``MAX_DEPTH``; values given as YAML
(``--set``) are parsed without aliases (no "billion laughs") and held to the same depth.
Real inputs are shallow: an API body is 3 levels deep, the chart's values 6.
"""

from __future__ import annotations

from typing import Any

import orjson

#: Deepest nesting accepted in any document from outside (objects and arrays both count).
MAX_DEPTH = 32
#: Longest single ``--set`` value (characters).
MAX_SET_VALUE = 4096


class LimitExceeded(ValueError):
    """A document from outside is malformed or beyond the bounds; the message says which."""


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of ``value`` (a scalar is 0, ``[]`` is 1), counted without recursion;
    stops counting at ``limit + 1``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest


def check_depth(value: Any, what: str, limit: int = MAX_DEPTH) -> Any:
    """``value`` unchanged, or ``LimitExceeded`` when it nests deeper than ``limit``."""
    if depth(value, limit) > limit:
        raise LimitExceeded(f"{what} nests deeper than {limit} levels")
    return value


def load_json(raw: bytes | str, what: str = "the document", limit: int = MAX_DEPTH) -> Any:
    """Parse JSON from outside: ``LimitExceeded`` (a ValueError) when it is not JSON, not
    UTF-8 or nests deeper than ``limit``; never a RecursionError."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc).lower():
            raise LimitExceeded(f"{what} nests deeper than {limit} levels") from None
        raise LimitExceeded(f"{what} is not valid JSON") from None
    return check_depth(value, what, limit)

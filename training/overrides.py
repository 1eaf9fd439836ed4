"""`--set KEY=VALUE` of the CLIs (`keras-mlp-train`, `keras-mlp-convert`), parsed in one place.

A value is JSON when it parses (numbers, `true`, `null`, lists, objects), else the plain string, so
`--set lr=1e-3`, `--set rand_augment=[2,9]` and `--set interpolation=bicubic` all read as meant.

>>> parse_overrides(["num_blocks=2", "pooling=avg", "drop=null"])
[('num_blocks', 2), ('pooling', 'avg'), ('drop', None)]
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def parse_value(text: str) -> Any:
    """JSON when `text` parses as JSON, else `text` itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Iterable[str], example: str = "--set num_blocks=2") -> list[tuple[str, Any]]:
    """`(key, value)` pairs of `KEY=VALUE` strings, in order (a later pair wins when applied); a `ValueError`
    naming the bad item and `example` otherwise."""
    pairs = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r} (e.g. {example}).")
        pairs.append((key, parse_value(text)))
    return pairs

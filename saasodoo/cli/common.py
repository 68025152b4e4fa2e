"""What every ``saasodoo`` command module shares: consoles, common options, JSON output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from rich.console import Console

T = TypeVar("T")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)
if not out.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
    out = Console(highlight=False, width=200)

tenant_arg = click.argument("tenant_id", metavar="TENANT")


def output_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for humans, json for scripts.",
    )(f)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one library coroutine from a (synchronous) click command."""
    return asyncio.run(coro)

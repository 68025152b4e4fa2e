"""Kubernetes quantities read by the core (``core.values.parse_quantity``), as the kubernetes
client reads them: what metrics-server reports (``123456n`` CPU, ``51200Ki`` memory) and
every suffix, and the same refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kubernetes.utils.quantity import parse_quantity as client_parse_quantity

from saasodoo.core.values import parse_quantity

pytestmark = pytest.mark.unit

SAME = ["0", "1", "1.5", "250m", "123456789n", "15u", "2k", "2K", "3M", "1G", "1T", "1P",
        "1E", "51200Ki", "1Mi", "5Gi", "1Ti", "1Pi", "1Ei", "0.5Gi", "1e3", 7, 2.5]  # fmt: skip


@pytest.mark.parametrize("quantity", SAME)
def test_reads_as_the_kubernetes_client_does(quantity: str | int | float) -> None:
    assert parse_quantity(quantity) == client_parse_quantity(quantity)


def test_exact_values() -> None:
    assert parse_quantity("250m") == Decimal("0.25")
    assert parse_quantity("1Gi") == 1024**3
    assert parse_quantity("123456n") * 1000 == Decimal("0.123456")


@pytest.mark.parametrize("quantity", ["x", "1ki", "1KiB", "Gi", ""])
def test_refuses_what_the_kubernetes_client_refuses(quantity: str) -> None:
    with pytest.raises(ValueError):
        client_parse_quantity(quantity)
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(quantity)


@pytest.mark.parametrize("quantity", ["1_000", "1_0Mi", "1 Gi"])
def test_refuses_what_the_api_server_refuses_though_the_python_client_reads_it(
    quantity: str,
) -> None:
    """Decimal reads underscores and inner spaces; Kubernetes' quantity grammar has neither."""
    assert client_parse_quantity(quantity) > 0
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(quantity)

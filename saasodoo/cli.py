"""The ``saasodoo`` command line. Commands only parse options and call the library."""

from __future__ import annotations

import click

from saasodoo import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="saasodoo")
def cli() -> None:
    """Control plane of a multi-tenant Odoo SaaS on Kubernetes."""


def main() -> None:
    cli()

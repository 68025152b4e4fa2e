"""saasodoo: control plane of a multi-tenant Odoo SaaS on Kubernetes.

A tenant is a labelled namespace plus one Helm release of ``charts/odoo-tenant``.
The cluster is the source of truth; this package computes values, drives Helm and
reads status back from the Kubernetes API.
"""

__version__ = "0.1.0"

"""Thin adapters over foreign APIs (helm through pyhelm3, the kubernetes client, files).

Each translates its foreign errors into ``saasodoo.errors`` in one place.
"""

"""The web UI: server-rendered Jinja2 pages over the same operations as the HTTP API."""

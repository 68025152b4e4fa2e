"""The HTTP API: its blueprints (``meta``, ``auth``, ``tenants``, ``backups``, ``admin``),
request models, errors, jobs and the services the web UI shares. ``saasodoo.app`` assembles
them with the web UI into the Flask app.
"""

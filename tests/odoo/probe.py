"""``saasodoo_update_probe``: a small Odoo module built for saasodoo's update tests (not Odoo's
code), written out in the version a test needs:

- ``1.0``: the model ``saasodoo.update.probe`` (a name);
- ``1.1``: a good update: a field ``note``, filled for the records made before it by its
  ``post-migrate`` script;
- ``1.2``: a failing update: its ``pre-migrate`` changes the records, then raises, so
  ``odoo -u`` fails after it changed data (only a restore brings them back).

tests/odoo/test_update.py puts it on ``addons_path``; the real-node update test builds it into
derived Odoo images (one tag per version)."""

from __future__ import annotations

from pathlib import Path

NAME = "saasodoo_update_probe"
MODEL = "saasodoo.update.probe"
GOOD, BAD = "1.1", "1.2"
#: What the failing version's migration raises (the update's error names it).
BAD_MESSAGE = "saasodoo update probe 1.2: this migration fails on purpose"

_MODEL_PY = """from odoo import fields, models


class Probe(models.Model):
    _name = "saasodoo.update.probe"
    _description = "saasodoo update probe"

    name = fields.Char(required=True)
"""
_NOTE = "    note = fields.Char()\n"
_ACCESS = (
    "id,name,model_id:id,group_id:id,perm_read,perm_write,perm_create,perm_unlink\n"
    "access_saasodoo_update_probe,saasodoo.update.probe,model_saasodoo_update_probe,"
    "base.group_user,1,1,1,1\n"
)
_MIGRATIONS = {
    GOOD: (
        "post-migrate.py",
        "def migrate(cr, version):\n"
        "    cr.execute(\"UPDATE saasodoo_update_probe SET note = 'migrated from ' || %s\","
        " (version,))\n",
    ),
    BAD: (
        "pre-migrate.py",
        "def migrate(cr, version):\n"
        "    cr.execute(\"UPDATE saasodoo_update_probe SET name = name || ' (half-updated)'\")\n"
        f"    raise RuntimeError({BAD_MESSAGE!r})\n",
    ),
}


def write_probe(addons: Path, version: str) -> Path:
    """Write the module in ``version`` (``1.0``, ``GOOD`` or ``BAD``) into the addons directory
    ``addons`` (created); returns the module's directory."""
    module = addons / NAME
    (module / "models").mkdir(parents=True, exist_ok=True)
    (module / "security").mkdir(exist_ok=True)
    manifest = {"name": "saasodoo update probe", "version": version, "depends": ["base"],
                "data": ["security/ir.model.access.csv"], "license": "LGPL-3"}  # fmt: skip
    (module / "__manifest__.py").write_text(repr(manifest) + "\n")
    (module / "__init__.py").write_text("from . import models\n")
    (module / "models" / "__init__.py").write_text("from . import probe\n")
    (module / "models" / "probe.py").write_text(_MODEL_PY + ("" if version == "1.0" else _NOTE))
    (module / "security" / "ir.model.access.csv").write_text(_ACCESS)
    if version in _MIGRATIONS:
        script, text = _MIGRATIONS[version]
        (module / "migrations" / version).mkdir(parents=True, exist_ok=True)
        (module / "migrations" / version / script).write_text(text)
    return module

"""Updates that cannot break a tenant (issue #25 point 2): when an update runs ``odoo -u``, and
the steps that run it, undo it on failure and say so on the OdooTenant.

Why a step machine and not ``helm upgrade`` (Odoo 18.0 source, ``../shared/vendor/odoo``):

- A new image of the same series brings new module code. Odoo does not migrate a database
  when it starts: without ``-u``/``-i`` the registry loads the installed modules as they are
  (``odoo/modules/loading.py`` ``load_modules``: modules are updated only when marked ``to
  upgrade`` or given ``update``, which only ``-u`` does, STEP 2), so new fields and views of the
  new code are missing from the database until ``-u`` runs.
- ``-u`` is not one transaction: ``load_module_graph`` commits after each module it updated
  (``odoo/modules/loading.py``, "need to commit any modification the module's installation
  or update made"). A module that raises half-way leaves the modules before it updated and
  committed; ``Registry.new`` then only resets the ``to upgrade``/``to install`` states
  (``odoo/modules/registry.py`` -> ``loading.reset_modules_state``), it undoes no schema or
  data change. ``helm rollback`` restores the Deployment, never the database. So the only
  way back is a backup taken before ``-u`` and restored after a failure.
- With ``--stop-after-init`` a failed load makes Odoo exit non-zero
  (``odoo/service/server.py`` ``preload_registries`` returns -1 on any exception,
  ``ThreadedServer.run`` returns it, ``odoo/cli/server.py`` exits with it): the update Job
  fails, which the operator sees.
- ``-u`` names the installed modules, not ``all``: ``-u all`` puts ``update`` on every graph
  node (``odoo/modules/graph.py`` ``add_modules``) but calls no ``button_upgrade`` (no
  module is named "all": ``loading.py`` STEP 2), so a dependency the new code of an
  installed module added is never installed and that module is left out of the graph ("Unmet
  dependencies"). Naming the installed modules goes through ``ir.module.module.button_upgrade``
  (``odoo/addons/base/models/ir_module.py``), which marks them and every installed module
  depending on them ``to upgrade`` and installs new dependencies (``button_install``); since
  ``base`` is always among them, every installed module is updated.

The steps (``update_plan``), each driven one turn at a time by the operator's executor with
fixed work names (``work_names``), as ``saasodoo.core.copies`` drives a staging copy:

1. ``stop``: ``helm upgrade`` to the target's values with Odoo at zero replicas, web and
   cron (the suspension's values): Odoo stops, and the new revision's image, odoo.conf and
   odoo-init.py are in place without anything running them;
2. ``pre-update-backup``: a backup of kind ``pre-update`` (a Job from the backup CronJob),
   taken after the stop so that a restore loses no write (the chart keeps
   ``backup.keepPreUpdate`` of them); a backup whose name is not known fails the step (an
   update that cannot name its backup cannot be undone);
3. ``update``: a Job from the stopped web Deployment (``update_job``): the ``odoo-init``
   container of the new image and configuration, run with ``--update`` (``UPDATE_MODE``);
4. ``rollout``: ``helm upgrade`` to the target's values as they are (Odoo back up), followed
   until its workloads are ready;
5. ``signed-in-check``: the chart's ``helm test`` (a sign-in over JSON-RPC, not only
   ``/web/health``: ``Tenants.check_ready``);
6. ``done``.

A failure at ``stop`` or ``pre-update-backup`` changed no data: ``rollback``. A failure at
``update``, ``rollout`` or ``signed-in-check`` did (or may have): ``restore`` (Odoo to zero,
the pre-update backup restored by the house's restore Job) then ``rollback`` (``helm
rollback`` to the revision before the update); then ``stalled`` with the failed step's reason
and the backup used. A failure of ``restore`` or ``rollback`` themselves goes straight to
``stalled`` with Odoo left at zero: neither the old nor the new code is started on a database
whose state is not known, and nothing is retried until a force (``update_due``).

Pure: no I/O. Decisions and their reasons are also in docs/updates.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from saasodoo.core.copies import ABSENT, FAILED_WORK, RUNNING, SUCCEEDED, odoo_init_job
from saasodoo.core.crd import UPDATE_RESOLVED_AT
from saasodoo.core.status import OperationLock, ReleaseInfo
from saasodoo.core.templates import odoo_image
from saasodoo.core.values import get_path
from saasodoo.core.versions import parse_series, series_change_error
from saasodoo.errors import FieldError, InvalidInput

# -- what is a code change --------------------------------------------------------------

#: Why an update alters Odoo's code (``CodeChange.reasons``).
IMAGE = "image"  # another Odoo image (same series)
CONFIG = "config"  # an odoo.conf option that decides which code runs
MODULES = "modules"  # a module added to the values' module list

#: odoo.conf options (``odoo.config.extraOptions``) that decide which code Odoo runs on the
#: database, so that a change needs ``-u`` (``odoo/tools/config.py``): ``addons_path``
#: (``--addons-path``: where modules are found, first match wins, so a new path may bring
#: another version of an installed module), ``upgrade_path`` (``--upgrade-path``: the
#: migration scripts ``-u`` runs, ``odoo/modules/module.py`` and ``migration.py``) and
#: ``server_wide_modules`` (``--load``: modules whose code is imported in every process
#: before any registry, ``odoo/service/server.py`` ``load_server_wide_modules``). The chart
#: renders none of them itself (``_odooconf.tpl``'s owners): only the values set them. Every
#: other option (workers, limits, db_*, proxy_mode, smtp_*, log_level, ...) is not code.
CODE_OPTIONS = ("addons_path", "upgrade_path", "server_wide_modules")
#: Where the values set extra odoo.conf options.
EXTRA_OPTIONS_PATH = "odoo.config.extraOptions"
#: Modules Odoo always loads server-wide (``load_server_wide_modules``: ``{'base', 'web'} |``
#: the option; ``config.py`` reads '', 'None' and 'False' as ``base,web``).
DEFAULT_SERVER_WIDE = ("base", "web")
#: The list of modules a tenant's values would install (names), reserved: the chart has no
#: such value today (charts/odoo-tenant/values.yaml, whose schema refuses unknown keys: a
#: new database gets ``-i base`` and its auto-install modules only). When it comes, a
#: module added there is a code change (its ``-i`` runs in the update Job); a module removed
#: is not (an uninstall is an operation of its own).
MODULES_PATH = "odoo.modules"


@dataclass(frozen=True)
class CodeChange:
    """An update that alters the Odoo code an initialized database runs: ``reasons`` (of
    ``IMAGE``, ``CONFIG``, ``MODULES``, in that order), ``details`` (one sentence each),
    the Odoo image before and after, and the chart versions (for messages)."""

    reasons: tuple[str, ...]
    details: tuple[str, ...]
    from_image: str
    to_image: str
    from_chart: str = ""
    to_chart: str = ""
    #: What the database would run after the update: the image, the ``CODE_OPTIONS`` and
    #: the modules of the new values, as a short digest (``code_target``). A failed update's
    #: target is not started again by a later spec change that asks for the same code.
    target: str = ""

    @property
    def message(self) -> str:
        return "; ".join(self.details)

    def to_status(self) -> dict[str, Any]:
        """The change as ``status.update`` records it (camelCase keys)."""
        out: dict[str, Any] = {"reasons": list(self.reasons), "fromImage": self.from_image,
                               "toImage": self.to_image}  # fmt: skip
        if self.target:
            out["target"] = self.target
        if self.from_chart != self.to_chart:
            out.update(fromChart=self.from_chart, toChart=self.to_chart)
        return out


def _effective_tag(values: dict[str, Any]) -> str:
    odoo = values.get("odoo") or {}
    return str((odoo.get("image") or {}).get("tag") or odoo.get("version") or "")


def _same_image(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``old`` and ``new`` run the same Odoo image: the same digest in the same
    repository when both pin one (the content, whatever tag names it, as
    ``templates.template_key``), else the same rendered reference. A tag alone can be
    rebuilt upstream under the same name: such a rebuild is not seen (pin digests)."""
    image_old = get_path(old, "odoo.image") or {}
    image_new = get_path(new, "odoo.image") or {}
    if image_old.get("digest") and image_new.get("digest"):
        keys = ("registry", "repository", "digest")
        return all(image_old.get(k) == image_new.get(k) for k in keys)
    return odoo_image(old) == odoo_image(new)


def _option(values: dict[str, Any], key: str) -> tuple[str, ...]:
    """An extra odoo.conf option of ``CODE_OPTIONS`` as Odoo reads it: a comma-separated
    list, entries stripped (order kept: ``addons_path`` is searched in order);
    ``server_wide_modules`` as a sorted set with ``DEFAULT_SERVER_WIDE``."""
    options = get_path(values, EXTRA_OPTIONS_PATH) or {}
    raw = options.get(key) if isinstance(options, dict) else None
    text = "" if raw is None or raw is False else str(raw)
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    if key == "server_wide_modules":
        if text.strip() in ("", "None", "False"):
            parts = DEFAULT_SERVER_WIDE
        return tuple(sorted(set(parts) | set(DEFAULT_SERVER_WIDE)))
    return parts


def _modules(values: dict[str, Any]) -> set[str]:
    found = get_path(values, MODULES_PATH)
    return {str(m) for m in found} if isinstance(found, list) else set()


def code_change(
    old_values: dict[str, Any],
    new_values: dict[str, Any],
    old_chart_version: str,
    new_chart_version: str,
    *,
    tenant_id: str = "",
) -> CodeChange | None:
    """Whether moving a tenant from ``old_values`` (chart ``old_chart_version``) to
    ``new_values`` (``new_chart_version``) alters the Odoo code its database runs, and why;
    None when it does not. Both values are what the chart renders: the tenant's values
    merged over that chart version's own values.yaml (``helm_merge``, as Helm does), so a
    chart whose defaults change the image or an option is seen.

    A code change is, and only is:

    - ``IMAGE``: another Odoo image (``templates.odoo_image``: ``odoo.image.registry``,
      ``.repository``, ``.tag`` or else ``odoo.version``, ``.digest``; two pinned digests of
      one repository compare by digest alone). Another series is refused here too
      (InvalidInput, ``versions.series_change_error``; ``check_version_change`` refuses it
      before): ``-u`` does not migrate across majors;
    - ``CONFIG``: a change of ``odoo.config.extraOptions`` ``addons_path``, ``upgrade_path``
      or ``server_wide_modules`` (``CODE_OPTIONS``);
    - ``MODULES``: a module added to ``odoo.modules`` (``MODULES_PATH``, reserved).

    Not code: a chart version alone (its odoo-init.py, backup programs, probes, labels),
    ``odoo.image.pullPolicy``, replicas and suspension, resources and limits, workers and
    other odoo.conf options, domains and ingress, PostgreSQL's image (its own rule:
    ``versions.check_postgresql_image_change``), backups, the plan. ValueError when either
    side names no Odoo image (``odoo_image``)."""
    reasons: list[str] = []
    details: list[str] = []
    from_image, to_image = odoo_image(old_values), odoo_image(new_values)
    if not _same_image(old_values, new_values):
        before = parse_series(_effective_tag(old_values))
        after = parse_series(_effective_tag(new_values))
        if before is not None and after is not None and before != after:
            raise series_change_error(tenant_id or "?", before, after, "values.odoo.image.tag")
        reasons.append(IMAGE)
        details.append(f"Odoo image {from_image} -> {to_image}")
    changed = [k for k in CODE_OPTIONS if _option(old_values, k) != _option(new_values, k)]
    if changed:
        reasons.append(CONFIG)
        details.append("odoo.conf " + ", ".join(
            f"{k} {','.join(_option(old_values, k)) or '(unset)'} -> "
            f"{','.join(_option(new_values, k)) or '(unset)'}" for k in changed))  # fmt: skip
    added = sorted(_modules(new_values) - _modules(old_values))
    if added:
        reasons.append(MODULES)
        details.append(f"modules added: {', '.join(added)}")
    if not reasons:
        return None
    return CodeChange(tuple(reasons), tuple(details), from_image, to_image,
                      old_chart_version, new_chart_version, code_target(new_values))  # fmt: skip


def code_target(values: dict[str, Any]) -> str:
    """The Odoo code a database runs with ``values`` (rendered, as ``code_change`` takes
    them): the image (``templates.odoo_image``; its digest alone when pinned), the
    ``CODE_OPTIONS`` (a set for ``server_wide_modules``) and the modules, as 16 hex digits
    of their SHA-256. Equal targets run the same code."""
    digest = get_path(values, "odoo.image.digest")
    doc = {
        "image": digest or odoo_image(values),
        "options": {k: sorted(_option(values, k)) if k == "server_wide_modules"
                    else _option(values, k) for k in CODE_OPTIONS},
        "modules": sorted(_modules(values)),
    }  # fmt: skip
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def retries_failed_target(progress: dict[str, Any] | None, change: CodeChange) -> bool:
    """Whether ``change`` asks again for the code of the update that failed and was reverted
    (``status.update`` ``progress``, stalled): a later spec change that leaves the image and
    the code options as they were (a domain, a plan) must not start the same failing
    ``odoo -u`` again, with its stop, backup and restore; a force or another target does."""
    if not progress or progress.get("step") != STALLED or not progress.get("reverted"):
        return False
    failed = (progress.get("change") or {}).get("target")
    return bool(failed) and failed == change.target


# -- the steps --------------------------------------------------------------------------

STOP = "stop"  # helm upgrade to the target, Odoo (web and cron) at zero: the new code staged
BACKUP = "pre-update-backup"  # an on-demand backup of kind pre-update, Odoo stopped
UPDATE = "update"  # the Job: odoo-init --update (odoo -u <installed> --stop-after-init)
ROLLOUT = "rollout"  # helm upgrade to the target as it is: Odoo back up, ready
CHECK = "signed-in-check"  # helm test: a sign-in over JSON-RPC
RESTORE = "restore"  # Odoo to zero, the pre-update backup restored
ROLLBACK = "rollback"  # helm rollback to the revision before the update
DONE = "done"  # the update succeeded: the ordinary reconcile goes on
STALLED = "stalled"  # the update failed (reverted or not): held until a force or new spec

#: The forward steps, in order; ``update_plan`` keeps a prefix or all of them.
FORWARD = (STOP, BACKUP, UPDATE, ROLLOUT, CHECK)
#: The steps that undo a failed update, in order.
REVERT = (RESTORE, ROLLBACK)
#: Forward steps after which the database may differ from the pre-update backup: a failure
#: there is undone by ``RESTORE`` first; before them by ``ROLLBACK`` alone.
CHANGES_DATA = frozenset({UPDATE, ROLLOUT, CHECK})

#: The Reconciling reason of each step, and the Stalled reason of its failure.
STEP_REASONS = {
    STOP: ("UpdateStopping", "UpdateStopFailed"),
    BACKUP: ("UpdateBackingUp", "PreUpdateBackupFailed"),
    UPDATE: ("UpdatingModules", "ModuleUpdateFailed"),
    ROLLOUT: ("UpdateRollingOut", "UpdateRolloutFailed"),
    CHECK: ("UpdateCheckingSignIn", "UpdateSignedInCheckFailed"),
    RESTORE: ("UpdateRestoring", "UpdateRestoreFailed"),
    ROLLBACK: ("UpdateRollingBack", "UpdateRollbackFailed"),
}
#: Values the rollout applies over the target's: no Ingress until the signed-in check
#: passed (the check goes through the Service). Users would otherwise write to the new code
#: between the rollout and a failed check, and the restore of the pre-update backup would
#: lose those writes. The ordinary reconcile after the update's end applies the spec as it
#: is (Ingress back: one more revision).
ROLLOUT_VALUES: dict[str, Any] = {"ingress": {"enabled": False}}
#: The Stalled reason of an update stopped by a release revision made outside it
#: (``hand_revision``): an SRE's ``helm rollback`` or ``helm upgrade`` in the middle.
CHANGED_BY_HAND = "UpdateChangedByHand"
#: The annotation that says a stalled update was resolved by hand (``RESOLVED``).
RESOLVED_ANNOTATION = UPDATE_RESOLVED_AT
#: The steps during which none of the update's helm steps runs: the release's newest
#: revision stays the one its last helm step left (``hand_revision``).
NO_HELM_STEPS = frozenset({BACKUP, UPDATE, CHECK, RESTORE})
#: What each step does, for messages and Events.
STEP_WORDS = {
    STOP: "stopping Odoo and staging the new revision (helm upgrade, Odoo at zero)",
    BACKUP: "taking the pre-update backup",
    UPDATE: "updating the installed modules (odoo -u, the new image)",
    ROLLOUT: "rolling out the new revision (helm upgrade, Odoo back up, no Ingress yet)",
    CHECK: "checking a signed-in request (helm test)",
    RESTORE: "restoring the pre-update backup (Odoo at zero)",
    ROLLBACK: "rolling the release back to its revision before the update",
}


def backup_refusal(values: dict[str, Any]) -> FieldError | None:
    """Why the tenant's values (merged over the chart's defaults) keep no pre-update backup
    that could undo ``odoo -u``, as the field and the rule; None when they do. Backups off;
    ``keepPreUpdate`` 0 (backup.py's retention would delete the zip it just wrote); a
    ``pvc`` storage on an emptyDir (the zip is gone with its pod)."""
    if not get_path(values, "backup.enabled"):
        return FieldError("values.backup.enabled", "an update runs odoo -u, which only a "
                          "pre-update backup can undo; enable backups first")  # fmt: skip
    keep = get_path(values, "backup.keepPreUpdate")
    if keep is not None and int(keep) < 1:
        return FieldError("values.backup.keepPreUpdate", "must be at least 1 for an update: "
                          "the pre-update backup is what undoes odoo -u")  # fmt: skip
    storage = get_path(values, "backup.storage") or "pvc"
    if storage == "pvc" and get_path(values, "backup.persistence.enabled") is False:
        return FieldError("values.backup.persistence.enabled", "backups on an emptyDir "
                          "(storage pvc without persistence) are lost with their pod: no "
                          "pre-update backup would be left to undo odoo -u")  # fmt: skip
    return None


def update_plan(
    change: CodeChange | None,
    *,
    initialized: bool,
    suspended: bool,
    backups: bool = True,
    refusal: FieldError | None = None,
) -> list[str]:
    """The forward steps of an update carrying ``change``; ``[]`` when it needs none (no
    code change, or a database not initialized yet: the new image's ``-i base`` makes it,
    so the ordinary ``helm upgrade`` applies it). A ``suspended`` tenant stops after
    ``UPDATE``: the staged revision is already its target (Odoo at zero), and there is no
    Odoo to sign in to. The plan is computed again every turn, so a tenant suspended or
    resumed during an update gets or loses ``ROLLOUT`` and ``CHECK`` (``current_step``).
    ``initialized``: the tenant's database carries Odoo (it ran on a deployed revision: a
    copy once ``copied``, a templated create once its template state settled; odoo-init
    ``--update`` also finds a database without base and reports it skipped).
    InvalidInput naming ``values.backup.enabled`` when the tenant keeps no backups, or the
    field of ``refusal`` (``backup_refusal``): an update that cannot be undone is not run."""
    if change is None or not initialized:
        return []
    if not backups and refusal is None:
        refusal = FieldError("values.backup.enabled", "an update runs odoo -u, which only a "
                             "pre-update backup can undo; enable backups first")  # fmt: skip
    if refusal is not None:
        raise InvalidInput(
            "update refused: it changes Odoo's code and the tenant keeps no pre-update backup",
            [FieldError(refusal.field, f"{change.message}: {refusal.message}")],
        )  # fmt: skip
    return [STOP, BACKUP, UPDATE] if suspended else list(FORWARD)


@dataclass(frozen=True)
class UpdateAction:
    """What the executor does next: ``verb`` is ``start`` (create the step's work),
    ``wait`` (look again later), ``advance`` (the step is done: go on with ``next_step``),
    ``fail`` (the step failed: record it and go on with ``next_step``, a revert step or
    ``STALLED``; at ``STALLED`` itself ``next_step`` is "": report Stalled, do nothing) or
    ``done`` (the update is over: the ordinary reconcile)."""

    verb: str
    step: str
    next_step: str = ""


def current_step(plan: list[str], progress: dict[str, Any] | None) -> str:
    """The step an update is at from ``status.update`` (``progress``): its ``step`` when it is
    in ``plan``, a revert step, ``DONE`` or ``STALLED``; ``DONE`` for a forward step the plan
    no longer has (``ROLLOUT``/``CHECK`` of a tenant suspended meanwhile: the staged revision
    is its target); the plan's first when nothing is recorded. Never the plan's first for a
    step it does not know (an update is never started again by mistake): ValueError."""
    step = (progress or {}).get("step")
    if not step:
        return plan[0] if plan else DONE
    if step in plan or step in REVERT or step in (DONE, STALLED):
        return str(step)
    if step in FORWARD:
        return DONE
    raise ValueError(f"unknown update step {step!r} in status.update")


def revert_from(step: str) -> str:
    """The first revert step after a failure at the forward step ``step``."""
    return RESTORE if step in CHANGES_DATA else ROLLBACK


def next_update_action(plan: list[str], step: str, seen: str) -> UpdateAction:
    """The executor's decision for the update at ``step`` of ``plan`` whose work was found
    ``seen`` (``copies.ABSENT``, ``RUNNING``, ``SUCCEEDED``, ``FAILED_WORK``):

    - ``ABSENT`` -> start it; ``RUNNING`` -> wait (an operator restarted mid-step finds its
      work by its fixed name or its revision, and waits for it: never a second one);
    - a forward step ``SUCCEEDED`` -> advance to the plan's next, ``DONE`` after its last;
      ``FAILED_WORK`` -> fail into ``revert_from(step)``;
    - ``RESTORE`` ``SUCCEEDED`` -> advance to ``ROLLBACK``; ``ROLLBACK`` ``SUCCEEDED`` ->
      advance to ``STALLED`` (reverted: the tenant serves its previous data);
    - a revert step ``FAILED_WORK`` -> fail into ``STALLED`` (not reverted: Odoo stays at
      zero; never retried by itself);
    - ``DONE`` -> done and ``STALLED`` -> fail (terminal), whatever ``seen``.

    ValueError for a step neither in ``plan`` nor a revert step, or an unknown ``seen``."""
    if step == DONE:
        return UpdateAction("done", step)
    if step == STALLED:
        return UpdateAction("fail", step)
    if step not in plan and step not in REVERT:
        raise ValueError(f"step {step!r} is not in the plan {plan} nor a revert step")
    if seen not in (ABSENT, RUNNING, SUCCEEDED, FAILED_WORK):
        raise ValueError(f"unknown state of a step's work: {seen!r}")
    if seen == ABSENT:
        return UpdateAction("start", step)
    if seen == RUNNING:
        return UpdateAction("wait", step)
    if step == RESTORE:
        return UpdateAction("advance" if seen == SUCCEEDED else "fail", step,
                            ROLLBACK if seen == SUCCEEDED else STALLED)  # fmt: skip
    if step == ROLLBACK:
        return UpdateAction("advance" if seen == SUCCEEDED else "fail", step, STALLED)
    if seen == FAILED_WORK:
        return UpdateAction("fail", step, revert_from(step))
    index = plan.index(step)
    return UpdateAction("advance", step, plan[index + 1] if index + 1 < len(plan) else DONE)


# -- when an update starts, and what a force does -----------------------------------------

#: ``update_due`` answers.
RUN = "run"  # an update is under way: its next step, whatever the spec says now
START = "start"  # a new update (attempt 1 for a new generation, the next for a force)
HOLD = "hold"  # a stalled update of this generation: report it, do nothing
RETRY_REVERT = "retry-revert"  # a force on an update whose revert failed: that step again
RESOLVED = "resolved"  # a stalled update an SRE said resolved by hand: status.update dropped
NONE = "none"  # no update: the ordinary reconcile


def in_progress(progress: dict[str, Any] | None) -> bool:
    """Whether an update is under way (``status.update`` at a step that is neither ``done``
    nor ``stalled``): its steps own the tenant until it ends; a one-shot operation waits
    (a rollback or a restore in between would put old code on an updated database, or an
    old database under new code), and failed attempts do not stop it (``MAX_RETRIES``)."""
    step = (progress or {}).get("step")
    return bool(step) and step not in (DONE, STALLED)


def update_due(
    progress: dict[str, Any] | None,
    *,
    generation: int,
    changed: bool,
    force: bool,
    resolved: bool = False,
) -> str:
    """What the executor does with a tenant at ``generation`` whose ``status.update`` is
    ``progress`` and whose desired values are (``changed``) or are not a code change from
    the applied ones:

    - an update under way (step not ``DONE``/``STALLED``) is run to its end: a spec change
      or a suspension meanwhile waits for it (a spec change is applied after it, by the
      ordinary reconcile, and may start another update; reverting first would cost a
      restore and an update more for the same end);
    - a ``STALLED`` update whose revert failed (``reverted`` false) holds the tenant, Odoo at
      zero, whatever the spec: a new spec is no way out of a database in an unknown state
      (its pre-update backup would be of that state). A force retries the failed revert
      step (``RETRY_REVERT``);
    - a ``STALLED`` update that was reverted holds this generation (``HOLD``: never
      retried by itself); a new generation that still changes the code, or a force, starts
      a new one, unless it asks for the code that failed (``retries_failed_target``, which
      the executor checks once the change is known: held too, with the message saying so);
    - a ``STALLED`` update an SRE said resolved by hand (``resolved``: the annotation
      ``saasodoo.dev/update-resolved-at``, new) is ``RESOLVED``, before a force: its
      ``status.update`` is dropped and the ordinary reconcile goes on with the spec;
    - an update ``DONE`` for this generation is ``NONE`` unless forced (the applied values
      are its target: a code change still seen is not run again in a loop);
    - otherwise a code change starts one (``START``), and no code change is ``NONE``."""
    step = (progress or {}).get("step")
    if step and step not in (DONE, STALLED):
        return RUN
    if step == STALLED and resolved:
        return RESOLVED
    same = (progress or {}).get("generation") == generation
    if step == DONE and same and not force:
        return NONE  # done for this spec: a change seen still is not run in a loop
    if step == STALLED:
        if not (progress or {}).get("reverted"):
            return RETRY_REVERT if force else HOLD
        if same and not force:
            return HOLD
    return START if changed else NONE


def next_attempt(progress: dict[str, Any] | None, generation: int) -> int:
    """The attempt number of an update (re)started at ``generation``: 1 for a new
    generation, the previous attempt + 1 for the same one (a force). It is part of the work
    names, so a retried step never finds the failed work of the attempt before."""
    if not progress or progress.get("generation") != generation:
        return 1
    return int(progress.get("attempt") or 1) + 1


def retry_revert(progress: dict[str, Any]) -> dict[str, Any]:
    """``status.update`` of a stalled update whose revert failed (or was never run: an update
    ``interrupted`` by a revision made by hand), after a force (``RETRY_REVERT``): back at
    the revert step that failed, under the next attempt (new work names: the failed restore
    Job is not found again), the revert's failure cleared. The first failure
    (``failedStep``, ``message``), the backup and the revisions are kept; a revision made by
    hand becomes the newest one the revert expects (``headRevision``).
    ValueError for an update that is not stalled with a failed revert."""
    hand = progress.get("interruptedBy") or {}
    failed = progress.get("revertFailedStep") or hand.get("revertFrom")
    if progress.get("step") != STALLED or progress.get("reverted") or failed not in REVERT:
        raise ValueError("only a stalled update whose revert failed retries its revert")
    drop = ("finishedAt", "reverted", "revertFailedStep", "revertMessage", "stepFrom")
    out = {k: v for k, v in progress.items() if k not in drop}
    out.update(step=failed, attempt=int(progress.get("attempt") or 1) + 1)
    if hand.get("revision") is not None:  # the revert starts from the hand's revision
        out["headRevision"] = int(hand["revision"])
    return out


def hand_revision(progress: dict[str, Any], head: ReleaseInfo | None) -> int | None:
    """The release's newest revision when someone else made it during the update (an SRE's
    ``helm rollback`` or ``helm upgrade``), else None. Only judged at a step during which the
    update runs no helm (``NO_HELM_STEPS``): the newest revision must then be the one its last
    helm step left (``headRevision``; for an update recorded before that field,
    ``stagedRevision`` at the backup and update steps, else not judged)."""
    step = progress.get("step")
    if step not in NO_HELM_STEPS or head is None:
        return None
    expected = progress.get("headRevision")
    if expected is None and step in (BACKUP, UPDATE):
        expected = progress.get("stagedRevision")
    if expected is None or head.revision <= int(expected):
        return None
    return head.revision


def interrupted(progress: dict[str, Any], revision: int, *, now: datetime) -> dict[str, Any]:
    """``status.update`` of an update stopped because ``revision`` was made outside it
    (``hand_revision``): ``stalled``, nothing undone and nothing more run by it (a hand's
    rollback is left alone, as the house leaves any change by hand); recorded as a revert
    that has not run (``reverted`` false; ``interruptedBy``: the revision, the step, and
    ``revertFrom``, the revert's first step from here), so a force runs the revert
    (``retry_revert``): the pre-update backup restored when the database may have changed,
    then the release rolled back to ``fromRevision``. Without a force the tenant is held
    (``update_due``: ``HOLD``); ``saasodoo.dev/update-resolved-at`` keeps what runs."""
    step = str(progress.get("step"))
    first = RESTORE if step == RESTORE else revert_from(step)
    note = (f"revision {revision} of the release was made outside the update, at its step "
            f"{step}")  # fmt: skip
    fields: dict[str, Any] = {
        "interruptedBy": {"revision": revision, "step": step, "revertFrom": first},
        "reverted": False,
        "work": None,
        "stepFrom": None,
    }
    if step not in REVERT:
        fields.update(failedStep=step, message=note)
    return update_status(progress, step=STALLED, now=now, **fields)


# -- names, status ----------------------------------------------------------------------


def work_names(tenant: str, uid: str, generation: int, attempt: int = 1) -> dict[str, str]:
    """The names of an update's work, fixed by the OdooTenant (``uid``: its
    ``metadata.uid``), the ``generation`` the update started for (``status.update.generation``,
    never the object's current one: a spec changed during the update must not rename its
    work) and its ``attempt`` (``status.update.attempt``), so that a
    step re-entered after an operator restart finds its own work instead of starting
    another: the pre-update backup Job (made from the tenant's backup CronJob, kind
    ``pre-update``: it runs in the tenant's own turn, which an ``OdooTenantBackup`` request
    would wait for), the update Job and the restore Job. The helm steps (``STOP``,
    ``ROLLOUT``, ``ROLLBACK``) have no name: the operation lock guards them and the revision
    they started from (``status.update.stepFrom``) tells whether they ran
    (``release_step_state``). At most 63 characters."""
    tag = f"{uid.replace('-', '')[:8] or '0'}-{generation}"
    if attempt > 1:
        tag += f"-{attempt}"
    kinds = {BACKUP: "preupdate", UPDATE: "update", RESTORE: "update-restore"}
    out = {}
    for step, kind in kinds.items():
        suffix = f"-{kind}-{tag}"
        out[step] = tenant[: max(63 - len(suffix), 1)].rstrip("-") + suffix
    return out


def update_status(
    previous: dict[str, Any] | None, *, step: str, now: datetime, **fields: Any
) -> dict[str, Any]:
    """The OdooTenant's ``status.update`` after a move to ``step``: ``step``, ``startedAt``
    (kept from ``previous``, else ``now``), ``finishedAt`` once ``DONE`` or ``STALLED``, and
    ``fields`` (camelCase keys, None drops one): ``generation``, ``attempt``, ``change``
    (``CodeChange.to_status``), ``fromRevision`` (the rollback target), ``stepFrom`` (the
    revision a helm step started from), ``stagedRevision``, ``backup`` (the pre-update
    backup's zip) and ``backupJob``, ``job``, ``result`` (the update Job's ``RESULT``),
    ``failedStep``, ``reverted``, ``message``. A new update starts from ``previous=None``.
    Times are RFC 3339 UTC."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    out: dict[str, Any] = dict(previous or {})
    out["step"] = step
    out.setdefault("startedAt", stamp)
    if step in (DONE, STALLED):
        out.setdefault("finishedAt", stamp)
    for key, value in fields.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def move(
    progress: dict[str, Any],
    action: UpdateAction,
    *,
    now: datetime,
    why: str = "",
    **fields: Any,
) -> dict[str, Any]:
    """``status.update`` after the executor carried out ``action`` (``advance`` or ``fail``;
    others change nothing): the next step, ``fields``, ``work`` and ``stepFrom`` cleared (the
    next helm step records its own: one left from ``STOP`` would make ``ROLLOUT`` look done),
    and what a failure records:
    a forward step's failure ``failedStep`` and ``message`` ``why``; a revert step's
    ``revertFailedStep``, ``revertMessage`` ``why`` and ``reverted`` false (the first
    failure's message is kept); ``ROLLBACK`` succeeded: ``reverted`` true."""
    if action.verb not in ("advance", "fail") or not action.next_step:
        return dict(progress)
    extra: dict[str, Any] = {"work": None, "stepFrom": None, **fields}
    if action.verb == "fail" and action.step in REVERT:
        extra.update(revertFailedStep=action.step, revertMessage=why[:1024] or "failed",
                     reverted=False)  # fmt: skip
    elif action.verb == "fail":
        extra.update(failedStep=action.step, message=why[:1024] or "failed")
    elif action.step == ROLLBACK:
        extra["reverted"] = True
    return update_status(progress, step=action.next_step, now=now, **extra)


def stalled_reason(progress: dict[str, Any]) -> str:
    """The Stalled reason of a stalled update: the failed revert step's when its revert
    failed (``UpdateRestoreFailed``, ``UpdateRollbackFailed``), else the failed forward
    step's (``ModuleUpdateFailed``, ...); ``UpdateFailed`` when none is recorded."""
    if progress.get("interruptedBy") and not progress.get("revertFailedStep"):
        return CHANGED_BY_HAND
    failed = progress.get("revertFailedStep") or progress.get("failedStep")
    return STEP_REASONS.get(str(failed), ("", "UpdateFailed"))[1]


def previous_data(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """``status.update.previousData`` from a restore Job's ``RESULT`` (restore.py's report):
    the replaced database, its filestore and until when they are kept; None when the
    report is unknown or the previous data was dropped."""
    kept = (report or {}).get("previous")
    if not isinstance(kept, dict) or not kept.get("database"):
        return None
    out = {"database": str(kept["database"]), "filestore": kept.get("filestore"),
           "keptUntil": kept.get("kept_until")}  # fmt: skip
    return {key: value for key, value in out.items() if value}


def stalled_message(progress: dict[str, Any]) -> str:
    """The Stalled message of a stalled update: the step that failed and why, the backup
    used, where the tenant is now and the way out."""
    failed = progress.get("failedStep") or "?"
    text = f"update failed at {failed}: {progress.get('message') or 'failed'}"
    backup = progress.get("backup")
    before = progress.get("fromRevision")
    hand = progress.get("interruptedBy") or {}
    if hand and not progress.get("reverted") and not progress.get("revertFailedStep"):
        step = hand.get("step")
        undo = "restores the pre-update backup " + str(backup) + ", then rolls" \
            if backup and hand.get("revertFrom") == RESTORE else "rolls"  # fmt: skip
        risk = (" odoo -u may have changed the database: the code that runs now and the data "
                "may not match.") if step in CHANGES_DATA or step == RESTORE else ""  # fmt: skip
        return (f"update stopped at {step}: revision {hand.get('revision')} of the release was "
                "made outside it (a helm rollback or upgrade by hand); it undid nothing and "
                f"runs no more.{risk} Annotate saasodoo.dev/force-requested-at to undo the "
                f"update (it {undo} the release back to revision {before}), or keep what runs: "
                f"set the spec to it and annotate {RESOLVED_ANNOTATION}")  # fmt: skip
    if progress.get("reverted"):
        used = f"pre-update backup {backup} restored, " if backup and failed in CHANGES_DATA \
            else ""  # fmt: skip
        kept = progress.get("previousData") or {}
        left = (f" The database as the failed update left it is kept as {kept['database']}"
                f"{' (and its filestore)' if kept.get('filestore') else ''}"
                f"{' until ' + str(kept['keptUntil']) if kept.get('keptUntil') else ''}.")  \
            if used and kept.get("database") else ""  # fmt: skip
        return (f"{text}; {used}release rolled back to revision {before}: the tenant serves "
                f"its previous data.{left} Not retried until the spec asks for other Odoo "
                "code, or a force")  # fmt: skip
    broken = progress.get("revertFailedStep") or "?"
    return (
        f"{text}; then {broken} failed: {progress.get('revertMessage') or 'failed'}. Odoo "
        f"stays at zero replicas. The pre-update backup is {backup or '(none taken)'}, "
        f"the revision before the update {before}. Either annotate "
        f"saasodoo.dev/force-requested-at to retry {broken} (it runs the revert from that "
        "step again: not after users wrote to a database fixed by hand), or restore the "
        "one and roll back to the other by hand, set the spec's image to the one that "
        f"runs, and annotate {RESOLVED_ANNOTATION} (the ordinary reconcile then goes on)"
    )


# -- observing helm steps ---------------------------------------------------------------


def release_step_state(
    head: ReleaseInfo | None,
    started_from: int,
    lock: OperationLock | None,
    now: datetime,
    stale_after: timedelta,
) -> str:
    """The state of a helm step (``STOP``, ``ROLLOUT``, ``ROLLBACK``) that started when the
    release's newest revision was ``started_from`` (``status.update.stepFrom``), from its
    newest revision now (``head``) and the namespace's operation lock: ``SUCCEEDED`` once a
    newer revision is deployed; ``FAILED_WORK`` when it failed (or is another status
    saasodoo does not wait on), or is left pending with its lock gone or past
    ``stale_after`` (an operator stopped in mid-helm: the executor unlocks it before the
    rollback); ``RUNNING`` while it may still run; ``ABSENT`` when no newer revision exists
    and no lock is held (helm was not called, or refused the values without a revision:
    start it)."""
    held = lock is not None and lock.held(now)
    if head is None or head.revision <= started_from:
        return RUNNING if held else ABSENT
    if head.status == "deployed":
        return SUCCEEDED
    if head.status.startswith("pending"):
        if held or (lock is None and head.updated and now - head.updated < stale_after):
            return RUNNING
    return FAILED_WORK


#: Steps whose work never runs twice in one attempt: a second ``-u`` on a database that a
#: first one may have half updated is not the update that was backed up for.
RUN_ONCE = frozenset({UPDATE})


def work_state(step: str, found: str, progress: dict[str, Any] | None) -> str:
    """The state of ``step``'s named work as the executor decides on it: what it ``found``
    by the work's fixed name, except that a ``RUN_ONCE`` step whose Job is gone after it was
    created (``status.update.work`` names the step: the executor writes it right after
    creating the Job, so a restart between the two finds the Job by name instead) is
    ``FAILED_WORK`` (deleted by hand or by a TTL before its end was seen), never ``ABSENT``
    (which would start a second ``-u``). A backup or a restore whose Job vanished is started
    again: both are safe to repeat (restore.py recovers first, a lock keeps them apart)."""
    if found == ABSENT and step in RUN_ONCE and (progress or {}).get("work") == step:
        return FAILED_WORK
    return found


def rollback_state(
    head: ReleaseInfo | None,
    from_revision: int,
    started_from: int,
    lock: OperationLock | None,
    now: datetime,
    stale_after: timedelta,
) -> str:
    """``ROLLBACK``'s state: ``SUCCEEDED`` at once when the release's newest revision is
    still ``from_revision``, deployed (the failure came before helm made a revision: nothing
    to roll back), else ``release_step_state``."""
    if head is not None and head.revision == from_revision and head.status == "deployed":
        return SUCCEEDED
    return release_step_state(head, started_from, lock, now, stale_after)


# -- the update Job ---------------------------------------------------------------------

#: On the update Job and its pod.
UPDATE_JOB_LABEL = "saasodoo.dev/update-job"
#: How long a finished update Job (and its pod's log: what -u said) is kept: a week. The
#: operator sees its end within seconds; one gone before that counts as failed (``work_state``:
#: a revert, never a second -u), which only an operator down for a week could meet.
UPDATE_JOB_TTL_SECONDS = 7 * 24 * 3600
#: odoo-init.py's mode the update Job runs (charts/odoo-tenant/files/odoo-init.py ``update``;
#: an odoo-init of a chart before it exits 2 on the unknown flag, which fails the step and
#: reverts the update). What it does:
#:
#: 1. write odoo.conf as every mode does; wait for the server; take the advisory lock
#:    ``LOCK_KEY`` (never beside an initialization or a neutralization);
#: 2. a database without ``base`` installed: nothing to update, ``RESULT {"ok": true,
#:    "updated": false}``;
#: 3. refuse (exit 1) a database with a module ``to install``, ``to upgrade`` or ``to
#:    remove``: an Odoo killed during ``-u`` leaves them (``reset_modules_state`` runs only
#:    on an exception it caught), and ``-u`` would go on with them;
#: 4. ``odoo -c <conf> -d <db> --no-http --workers=0 --max-cron-threads=0 -u <the
#:    installed modules, comma-separated, from ir_module_module state 'installed'>
#:    --stop-after-init``; a non-zero exit is the step's failure;
#: 5. check afterwards that no module is left ``to %`` and that ``base``'s
#:    ``latest_version`` is of the image's series (``odoo --version``); after a failed
#:    ``-u``, a module left ``to ...`` is reset as Odoo's ``reset_modules_state`` does;
#: 6. print ``RESULT {json}`` last: ``ok``, ``updated`` (module count), the modules whose
#:    ``latest_version`` changed (before -> after), or ``error``.
UPDATE_MODE = "--update"
#: Seconds the update Job may run (bemade's OdooUpgradeJob uses the same hour).
UPDATE_DEADLINE_SECONDS = 3600


def update_job(
    deployment: dict[str, Any],
    name: str,
    *,
    image: str | None = None,
    deadline_seconds: int = UPDATE_DEADLINE_SECONDS,
    memory: str | None = None,
) -> dict[str, Any]:
    """The Job that runs ``odoo -u`` on the tenant's database, from its web Deployment
    ``deployment`` as the API serves it, read after ``STOP``: the revision staged with the
    new image, odoo.conf and odoo-init.py, Odoo at zero. ``copies.odoo_init_job`` with
    ``UPDATE_MODE`` and ``UPDATE_JOB_LABEL`` (the web pod's ``odoo-init`` as its one
    container, its start arguments dropped, the template's volumes, identity, placement and
    labels, a readiness probe that never passes, ``backoffLimit`` 0: a failed ``-u`` is not
    run again on a half-updated database), with the web container's resources (``-u`` loads
    every module as a worker does; the web pods are at zero, so the quota has room) and
    ``activeDeadlineSeconds`` ``deadline_seconds`` (``Settings.update_deadline_seconds``);
    ``memory`` (``Settings.update_memory``, a quantity) replaces the memory request and limit
    of those resources. ``image``: the image the update is for
    (``CodeChange.to_image``): ValueError when the Deployment runs another one (it was read
    before the stop: the update must never run the old code). ValueError when the template
    has no ``odoo-init`` init container."""
    job, container = odoo_init_job(deployment, name, UPDATE_MODE, (UPDATE_JOB_LABEL, UPDATE))
    if image is not None and container.get("image") != image:
        raise ValueError(
            f"deployment {deployment['metadata'].get('name')} runs {container.get('image')}, "
            f"not the update's image {image}: stop (stage) the new revision first"
        )
    pod = deployment["spec"]["template"]["spec"]
    web = [c for c in pod.get("containers") or [] if c.get("name") == "odoo"]
    if web and web[0].get("resources"):
        container["resources"] = copy.deepcopy(web[0]["resources"])
    if memory:
        resources = container.setdefault("resources", {})
        resources.setdefault("requests", {})["memory"] = memory
        resources.setdefault("limits", {})["memory"] = memory
    job["spec"]["activeDeadlineSeconds"] = deadline_seconds
    job["spec"]["ttlSecondsAfterFinished"] = UPDATE_JOB_TTL_SECONDS
    return job

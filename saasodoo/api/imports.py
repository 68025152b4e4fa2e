"""Upload of a backup zip for import: ``POST /api/tenants/<id>/backups/import`` and the web
UI's form on the tenant page.

The body is read from the request stream in chunks of ``CHUNK`` bytes into a spool file on
disk (``SAASODOO_API_IMPORT_DIR``), never whole in memory; past the limit
(``SAASODOO_API_IMPORT_MAX_BYTES``) it is refused with 413 naming the limit (at once when the
Content-Length says so) and the spool file is removed. That is all this process does with
the zip: the cheap checks of ``saasodoo.backups.importing.check`` (the zip's directory and
manifest: sizes, entries, member names, an Odoo backup, the tenant's Odoo series) run in the
import worker, a process of its own under hard bounds derived from the upload limit, and
answer 422 before anything is stored; then the request itself runs the worker's full check
and rewrite (every member's CRC, what the dump asks of the tenant's role, the rewrite into
our format) and stores the zip in the tenant's backup storage
(``OperationRequests.stage_import``), writes an OdooTenantRestore of it with
``discardOnFailure`` for the operator to run, and removes the spool directory, whatever
happens. A refusal leaves the tenant's storage and data untouched.

Two bodies are accepted:

- ``multipart/form-data`` with the zip in the file field ``zip`` (a browser form;
  ``curl -F zip=@backup.zip``). The web form's CSRF token must come before the file: it is
  checked before a byte of the file is written.
- the zip itself, ``Content-Type: application/zip`` (or ``application/octet-stream``)
  (``curl --data-binary @backup.zip -H 'Content-Type: application/zip'``), its file name in
  the query ``filename``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

from saasodoo.adapters.auth import User
from saasodoo.api import services as ops
from saasodoo.api.services import Services
from saasodoo.backups import human_size, importing
from saasodoo.errors import FieldError, InvalidInput, SaasodooError
from saasodoo.operation_requests import RequestView

#: Bytes read from the request stream at a time (the most held in memory).
CHUNK = 1 << 20
#: What a multipart body may carry besides the zip (boundaries, part headers, small fields).
FORM_OVERHEAD = 64 * 1024
#: Largest non-file form field (the CSRF token).
FIELD_MAX = 4096
FILE_FIELD = "zip"
RAW_TYPES = frozenset(
    {"application/zip", "application/x-zip-compressed", "application/octet-stream"}
)


class TooLarge(SaasodooError):
    """The upload is larger than the limit."""

    http_status = 413


class BadForm(SaasodooError):
    """A malformed body, or a web form without its CSRF token."""

    http_status = 400


FORM_EXPIRED = "the form expired or did not come from this site; reload and try again"


def too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"the upload is larger than the limit of {limit} bytes ({human_size(limit)}); "
        "nothing was stored"
    )


@dataclass(frozen=True)
class Upload:
    """A received zip, in its spool directory."""

    path: Path
    size: int


def safe_filename(name: str | None) -> str:
    """The uploaded file's base name, reduced to ``[A-Za-z0-9._-]`` (the spool file's name
    and the backup manifest's ``imported_from``)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:100]
    return base or "upload.zip"


def _blocks(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    """The stream in blocks of at most ``CHUNK`` bytes; TooLarge past ``limit`` in total."""
    total = 0
    while True:
        try:
            block = stream.read(CHUNK)
        except RequestEntityTooLarge:  # werkzeug's own count (a stream without length)
            raise too_large(limit) from None
        if not block:
            return
        total += len(block)
        if total > limit:
            raise too_large(limit)
        yield block


def receive_raw(stream: IO[bytes], spool: Path, filename: str | None, limit: int) -> Upload:
    """The body is the zip: copied in blocks into ``spool``."""
    target = spool / safe_filename(filename)
    size = 0
    try:
        with target.open("wb") as out:
            for block in _blocks(stream, limit):
                out.write(block)
                size += len(block)
        if not size:
            raise InvalidInput("invalid request", [FieldError("(body)", "empty: send the zip")])
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return Upload(target, size)


def receive_form(
    stream: IO[bytes], boundary: bytes, spool: Path, limit: int, *, csrf: str | None = None
) -> Upload:
    """A multipart body: the file part ``zip`` copied in blocks into ``spool`` as it arrives,
    other parts small fields; with ``csrf``, the field ``csrf_token`` must equal it and come
    before the file."""
    # The decoder's own memory limit counts each block received, file data included: the
    # fields are bounded below instead, and its buffer after every block (every event is
    # taken before the next block is given; it keeps only what may hold a boundary, unless
    # the body has none, or endless part headers).
    decoder = MultipartDecoder(boundary, max_parts=16)
    fields: dict[str, bytearray] = {}
    current: Field | File | None = None
    out: IO[bytes] | None = None
    target: Path | None = None
    size = 0
    ended = False

    def check_csrf() -> None:
        if csrf is not None:
            sent = bytes(fields.get("csrf_token", b""))
            if not csrf or not hmac.compare_digest(sent, csrf.encode()):
                raise BadForm(FORM_EXPIRED)

    def handle(event: Any) -> None:
        nonlocal current, out, target, size
        if isinstance(event, Field):
            current = event
            fields[event.name] = bytearray()
        elif isinstance(event, File):
            check_csrf()
            current = event
            if event.name == FILE_FIELD and target is None:
                target = spool / safe_filename(event.filename)
                out = target.open("wb")
        elif isinstance(event, Data):
            if isinstance(current, File):
                if out is not None and current.name == FILE_FIELD:
                    size += len(event.data)
                    if size > limit:
                        raise too_large(limit)
                    out.write(event.data)
                    if not event.more_data:
                        out.close()
                        out = None
            elif isinstance(current, Field):
                value = fields[current.name]
                value += event.data
                if len(value) > FIELD_MAX:
                    raise BadForm(f"form field {current.name!r} is longer than {FIELD_MAX} bytes")

    try:
        try:
            for block in _blocks(stream, limit + FORM_OVERHEAD):
                decoder.receive_data(block)
                event = decoder.next_event()
                while not isinstance(event, (NeedData, Epilogue)):
                    handle(event)
                    event = decoder.next_event()
                if isinstance(event, Epilogue):
                    ended = True
                    break
                if len(decoder.buffer) > CHUNK + FORM_OVERHEAD:
                    raise BadForm("the body is not valid multipart/form-data (no boundary)")
            if not ended:
                decoder.receive_data(None)
                event = decoder.next_event()
                while not isinstance(event, (NeedData, Epilogue)):
                    handle(event)
                    event = decoder.next_event()
                ended = isinstance(event, Epilogue)
        except (ValueError, RequestEntityTooLarge):  # the decoder's own refusals
            raise BadForm("the body is not valid multipart/form-data") from None
        if not ended:
            raise BadForm("the multipart/form-data body ended early")
        check_csrf()
        if target is None or size == 0:
            raise InvalidInput(
                "invalid request",
                [FieldError(FILE_FIELD, "no file: send the backup zip in the form field 'zip'")],
            )
    except BaseException:
        if out is not None:
            out.close()
        if target is not None:
            target.unlink(missing_ok=True)
        raise
    finally:
        if out is not None:
            out.close()
    return Upload(target, size)


def receive(request: Request, spool: Path, limit: int, *, csrf: str | None = None) -> Upload:
    """The request's zip into ``spool``: multipart (``csrf``: a web form's expected token) or,
    for the API only, the raw body. Past ``limit``: TooLarge, refused at once when the
    Content-Length says so."""
    length = request.content_length
    if request.mimetype == "multipart/form-data":
        boundary = request.mimetype_params.get("boundary", "")
        if not boundary:
            raise BadForm("multipart/form-data without a boundary")
        if length is not None and length > limit + FORM_OVERHEAD:
            raise too_large(limit)
        request.max_content_length = limit + FORM_OVERHEAD
        return receive_form(request.stream, boundary.encode(), spool, limit, csrf=csrf)
    if csrf is not None:
        raise BadForm(FORM_EXPIRED)
    if request.mimetype in RAW_TYPES:
        if length is not None and length > limit:
            raise too_large(limit)
        request.max_content_length = limit
        return receive_raw(request.stream, spool, request.args.get("filename"), limit)
    raise InvalidInput(
        "invalid request",
        [
            FieldError(
                "(body)",
                "send the zip as multipart/form-data (file field 'zip') or as the body with "
                "Content-Type: application/zip",
            )
        ],
    )


Receiver = Callable[[Path, int], Upload]


def start_import(
    svc: Services,
    user: User,
    tenant_id: str,
    receiver: Receiver,
    *,
    drop_previous: bool = False,
    moved: bool = False,
    idempotency_key: str | None = None,
) -> RequestView:
    """Owner or operator (404 otherwise); the tenant's backup storage reachable from here
    (404 no backups; with the platform's S3 key pair the storage is the one the
    OdooTenant's values name, 409 for a backup volume, which only a pod in the tenant's
    namespace reads), all before a byte is received; then the upload (413 past the limit),
    the cheap checks in the import worker (422), and, in this request, the zip staged into
    the tenant's storage (``OperationRequests.stage_import``: the worker's full checks, a
    refusal 422 with nothing stored) and an OdooTenantRestore of it with
    ``discardOnFailure`` returned (``moved``: the database keeps its uuid and secret; by
    default it is a copy and gets new ones). Requests queue in the tenant's turn (no 409).

    The import is keyed (``idempotency_key``, the client's ``Idempotency-Key``, else the
    upload's SHA-256; with the options): a retry of the same upload while its import is
    pending or running, or up to ``IMPORT_RETRY_SECONDS`` after it succeeded, answers with
    that import's request and stages nothing (``OperationRequests.asked_import``); two
    racing ones write one request (``request_import``)."""
    key = _checked_key(idempotency_key)
    view = ops.owned_view(svc.objects, user, tenant_id)
    # Where it will be stored, before a byte is received (409: a backup volume).
    where = svc.requests.platform_storage(tenant_id)
    if where is not None:
        svc.backups.platform_store(tenant_id, where[0])
    else:
        svc.backups.store(tenant_id)
    return _stage(svc, tenant_id, view.odoo_version, receiver, drop_previous, moved, key)


def _spool(svc: Services) -> Path:
    root = svc.settings.import_dir
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="saasodoo-import-", dir=root))


def _stage(
    svc: Services,
    tenant_id: str,
    odoo_version: str,
    receiver: Receiver,
    drop_previous: bool,
    moved: bool,
    key: str | None = None,
) -> RequestView:
    """The import: received, checked, staged, requested (once per key); the spool
    removed."""
    limit = svc.settings.import_max_bytes
    spool = _spool(svc)
    try:
        upload = receiver(spool, limit)
        named = f"key:{key}" if key is not None else f"sha256:{file_digest(upload.path)}"
        key = f"{named} drop_previous={drop_previous} moved={moved}"
        asked = svc.requests.asked_import(tenant_id, key)
        if asked is not None:  # a retry of an import asked already: nothing staged again
            return asked
        importing.check(upload.path, tenant=tenant_id, odoo_version=odoo_version,
                        max_bytes=limit)  # fmt: skip
        staged = svc.requests.stage_import(
            tenant_id, upload.path, moved=moved, max_bytes=limit, work_dir=spool
        )
        return ops.run(svc.requests.request_import(tenant_id, staged, key=key,
                                                   drop_previous=drop_previous))  # fmt: skip
    finally:
        shutil.rmtree(spool, ignore_errors=True)


#: The longest ``Idempotency-Key`` accepted, and its characters (printable ASCII).
MAX_KEY = 255


def _checked_key(key: str | None) -> str | None:
    """The client's ``Idempotency-Key`` (None when absent); InvalidInput naming the header
    when it is empty, longer than ``MAX_KEY`` or not printable ASCII."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY or not all(" " <= c <= "~" for c in key):
        raise InvalidInput("invalid request", [FieldError(
            "Idempotency-Key", f"1 to {MAX_KEY} printable ASCII characters")])  # fmt: skip
    return key


def file_digest(path: Path) -> str:
    """SHA-256 of the file at ``path`` (hex), read in blocks of ``CHUNK`` bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()

"""The upload of a zip to import (saasodoo.api.imports): read from the request stream in
chunks into a spool file, never whole in memory; refused past the limit with nothing left
behind; the web form's CSRF token checked before a byte of the file is written; the cheap
checks of the import (saasodoo.backups.importing.check). Requests are werkzeug's own, built
from streams; the route itself on a cluster: tests/api/test_import.py."""

from __future__ import annotations

import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from saasodoo.api import imports
from saasodoo.api.imports import CHUNK, BadForm, TooLarge, receive
from saasodoo.backups.importing import check
from saasodoo.errors import InvalidInput
from tests.api.zips import DUMP, Source, form, length, odoo_zip, request_for

pytestmark = pytest.mark.unit


@pytest.fixture
def app() -> Iterator[Flask]:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # the API's default body limit
    with app.app_context():
        yield app


def test_a_large_valid_zip_is_streamed_to_disk_in_chunks(app: Flask, tmp_path: Path) -> None:
    """48 MiB through werkzeug's request stream: read in blocks of at most CHUNK bytes, the
    peak of Python's allocations a few chunks (the whole zip never in memory), the spooled
    file identical, the cheap checks pass reading only its directory and manifest."""
    big = odoo_zip(tmp_path / "big.zip", big=48 << 20)
    size = big.stat().st_size
    spool = tmp_path / "spool"
    spool.mkdir()
    for kind in ("raw", "form"):
        target = spool / kind
        target.mkdir()
        if kind == "raw":
            source = Source(big)
            req = request_for(source, "application/zip", size, "filename=customer db.zip")
        else:
            parts, content_type = form("tok", "customer db.zip", big)
            source = Source(*parts)
            req = request_for(source, content_type, length(*parts))
        with app.test_request_context():
            tracemalloc.start()
            try:
                upload = receive(req, target, 64 << 20, csrf="tok" if kind == "form" else None)
                manifest = check(upload.path, tenant="acme", odoo_version="18.0")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
                source.close()
        assert upload.path == target / "customer_db.zip" and upload.size == size
        assert upload.path.read_bytes() == big.read_bytes()
        assert manifest["major_version"] == "18.0"
        assert max(source.reads) <= CHUNK + 65536, source.reads[:5]
        assert len(source.reads) >= size // (CHUNK + 65536)
        # werkzeug's LimitedStream holds a block twice while it reads: a few blocks at most
        assert peak < 8 * CHUNK < size / 6, f"{kind}: peak {peak} B for a {size} B upload"


@pytest.mark.parametrize("announced", [True, False])
def test_past_the_limit_413_names_it_and_nothing_is_left(
    app: Flask, tmp_path: Path, announced: bool
) -> None:
    """With a Content-Length over the limit nothing is read at all; without one (chunked),
    the reading stops at the limit; either way the spool directory is left empty."""
    blob = tmp_path / "blob.zip"
    blob.write_bytes(b"PK" + bytes(3 << 20))
    limit = 1 << 20
    raw: tuple[list[bytes | Path], str] = ([blob], "application/zip")
    for parts, content_type in (raw, form(None, "blob.zip", blob)):
        spool = tmp_path / f"spool-{len(content_type)}-{announced}"
        spool.mkdir()
        source = Source(*parts)
        size = length(*parts) if announced else None
        req = request_for(source, content_type, size)
        if not announced:
            req.environ["wsgi.input_terminated"] = True  # as waitress does (chunked bodies)
        with app.test_request_context(), pytest.raises(TooLarge) as refused:
            receive(req, spool, limit)
        source.close()
        assert "limit of 1048576 bytes (1.0 MiB)" in refused.value.message
        assert refused.value.http_status == 413
        assert list(spool.iterdir()) == []
        if announced:
            assert source.reads == []
        else:
            assert sum(source.reads) < 3 << 20 and max(source.reads) <= CHUNK + 65536


def test_the_form_s_csrf_token_is_checked_before_the_file_is_written(
    app: Flask, tmp_path: Path
) -> None:
    good = odoo_zip(tmp_path / "good.zip")
    for csrf in ("wrong", None):
        parts, content_type = form(csrf, "good.zip", good)
        req = request_for(Source(*parts), content_type, length(*parts))
        with app.test_request_context(), pytest.raises(BadForm, match="form expired"):
            receive(req, tmp_path, 1 << 20, csrf="expected")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["good.zip"]
    # a raw body cannot carry the token: refused for the web form
    req = request_for(Source(good), "application/zip", good.stat().st_size)
    with app.test_request_context(), pytest.raises(BadForm):
        receive(req, tmp_path, 1 << 20, csrf="expected")


def test_a_form_without_boundaries_is_not_buffered(app: Flask, tmp_path: Path) -> None:
    """The decoder holds what may still contain a boundary: a body with none is refused after
    about a block, not kept in memory to the limit."""
    body = b"--xyz\r\n" + bytes(8 << 20)
    source = Source(body)
    req = request_for(source, "multipart/form-data; boundary=xyz", len(body))
    with app.test_request_context(), pytest.raises(BadForm, match="no boundary"):
        receive(req, tmp_path, 64 << 20)
    assert sum(source.reads) <= 3 * CHUNK and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"zip": 1}', "multipart/form-data (file field 'zip')"),
        ("application/zip", b"", "empty"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a part", "BadForm"),
        (
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="other"\r\n\r\n1\r\n--xyz--\r\n',
            "no file",
        ),
    ],
)
def test_bodies_without_a_zip_are_refused_naming_the_rule(
    app: Flask, tmp_path: Path, content_type: str, body: bytes, expected: str
) -> None:
    req = request_for(Source(body), content_type, len(body))
    with app.test_request_context(), pytest.raises((InvalidInput, BadForm)) as refused:
        receive(req, tmp_path, 1 << 20)
    if expected == "BadForm":
        assert isinstance(refused.value, BadForm)
    else:
        assert isinstance(refused.value, InvalidInput) and expected in refused.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_bytes(b"%PDF-1.4 not a zip"), "is corrupt or truncated"),
        (lambda p: p.write_bytes(odoo_zip(p).read_bytes()[:-30]), "is corrupt or truncated"),
        (lambda p: odoo_zip(p, version="17.0", major_version="17.0", version_info=[17, 0]),
         "is a dump of Odoo 17.0; tenant 'acme' runs Odoo 18.0"),
        (lambda p: zipfile.ZipFile(p, "w").writestr("dump.sql", DUMP),
         "is not an Odoo backup (no manifest.json)"),
    ],
)  # fmt: skip
def test_the_cheap_checks_refuse_before_anything_is_queued(
    tmp_path: Path, make: object, expected: str
) -> None:
    path = tmp_path / "customer.zip"
    make(path)  # type: ignore[operator]
    with pytest.raises(InvalidInput) as refused:
        check(path, tenant="acme", odoo_version="18.0")
    assert expected in refused.value.message and "customer.zip" in refused.value.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/passwd", "passwd"), ("C:\\x\\Mon dossier é.zip", "Mon_dossier_.zip"),
     (".zip", "zip"), ("", "upload.zip"), (None, "upload.zip")],
)  # fmt: skip
def test_file_names_are_reduced_to_a_safe_base_name(name: str | None, expected: str) -> None:
    assert imports.safe_filename(name) == expected

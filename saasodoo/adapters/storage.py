"""Where tenant backups live, seen from the control plane: an S3-compatible bucket (boto3) or a
directory (a backup PVC mounted where saasodoo runs, or a local folder in tests).

Each store is scoped to one tenant's folder, the layout the chart's backup.py writes:
``<prefix>/<tenant>/<UTC stamp>-<kind>.zip`` and its manifest ``<same>.json`` (written last:
its presence marks a complete backup). Foreign errors become saasodoo's here.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from saasodoo.errors import NotFound, SaasodooError, TransientClusterError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


CHUNK = 1 << 20


def chunks(fh: BinaryIO) -> Iterator[bytes]:
    """``fh`` read in chunks of up to ``CHUNK`` bytes, closed at the end or when the
    iterator is closed."""
    try:
        while chunk := fh.read(CHUNK):
            yield chunk
    finally:
        fh.close()


class StorageError(SaasodooError):
    """The backup storage refused a request (credentials, bucket, permissions)."""

    exit_code = 8
    http_status = 502


class StorageUnavailable(TransientClusterError):
    """The backup storage could not be reached; retry later."""


class BackupStore(Protocol):
    """One tenant's folder of backups."""

    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...

    def stream(self, name: str) -> tuple[int, Iterator[bytes]]: ...

    def download(self, name: str, target: Path) -> None: ...

    def upload(self, name: str, source: Path) -> None: ...

    def write(self, name: str, data: bytes) -> None: ...

    def delete(self, name: str) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class S3Location:
    """An S3-compatible bucket and the credentials to reach it (the secret key is left out of
    the repr, which logs and tracebacks show)."""

    endpoint: str
    bucket: str
    prefix: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"


@functools.lru_cache(maxsize=16)
def s3_client(endpoint: str, key_id: str, secret: str, region: str) -> S3Client:
    """A boto3 S3 client (path-style requests, 3 attempts, 10 s to connect, 60 s to read),
    one per endpoint and key pair in this process: building one loads botocore's service
    model (about 0.1 s of CPU, more for the first import), which every templated create and
    backup listing of a long-lived operator or API process paid again. boto3's clients are
    safe to share between threads."""
    import boto3  # here, not at the top: only backup commands pay for importing boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        ),
    )


class S3Store:
    """A tenant's folder in an S3-compatible bucket (path-style requests)."""

    def __init__(self, location: S3Location, tenant_id: str) -> None:
        self.location = location
        self.folder = "/".join(p for p in (location.prefix.strip("/"), tenant_id) if p) + "/"
        self.client: S3Client = s3_client(
            location.endpoint, location.access_key_id, location.secret_access_key,
            location.region,
        )  # fmt: skip

    def describe(self) -> str:
        return f"s3://{self.location.bucket}/{self.folder}"

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return fn(Bucket=self.location.bucket, **kwargs)
        except EndpointConnectionError as exc:
            raise StorageUnavailable(f"{what}: {exc}") from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"{what}: not found in {self.describe()}") from None
            if code == "NoSuchBucket":
                raise StorageError(
                    f"{what}: bucket {self.location.bucket} does not exist"
                ) from None
            raise StorageError(f"{what}: {code or exc}") from None
        except BotoCoreError as exc:
            raise StorageUnavailable(f"{what}: {exc}") from None

    def names(self) -> list[str]:
        out: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": self.folder}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list backups", self.client.list_objects_v2, **kwargs)
            for item in page.get("Contents", []):
                rest = str(item["Key"])[len(self.folder) :]
                if rest and "/" not in rest:
                    out.append(rest)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(out)

    def read(self, name: str) -> bytes:
        resp = self._call(f"read {name}", self.client.get_object, Key=self.folder + name)
        data: bytes = resp["Body"].read()
        return data

    def stream(self, name: str) -> tuple[int, Iterator[bytes]]:
        """Size in bytes and the object's content in chunks of up to 1 MiB (read as the
        caller iterates; close the iterator to stop early)."""
        resp = self._call(f"read {name}", self.client.get_object, Key=self.folder + name)
        return int(resp["ContentLength"]), chunks(resp["Body"])

    def download(self, name: str, target: Path) -> None:
        resp = self._call(f"download {name}", self.client.get_object, Key=self.folder + name)
        with target.open("wb") as out:
            shutil.copyfileobj(resp["Body"], out, 1 << 20)

    def upload(self, name: str, source: Path) -> None:
        with source.open("rb") as fh:
            self._call(f"upload {name}", self.client.put_object, Key=self.folder + name, Body=fh)

    def write(self, name: str, data: bytes) -> None:
        self._call(f"write {name}", self.client.put_object, Key=self.folder + name, Body=data)

    def delete(self, name: str) -> None:
        self._call(f"delete {name}", self.client.delete_object, Key=self.folder + name)


class DirectoryStore:
    """A tenant's folder on a filesystem: the backup PVC's root, or ``<root>/<tenant>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_file())

    def _path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise NotFound(f"no backup {name!r} in {self.root}")
        return self.root / name

    def read(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{name}: not found in {self.root}") from None

    def stream(self, name: str) -> tuple[int, Iterator[bytes]]:
        """Size in bytes and the file's content in chunks of up to 1 MiB."""
        try:
            fh = self._path(name).open("rb")
        except FileNotFoundError:
            raise NotFound(f"{name}: not found in {self.root}") from None
        return os.fstat(fh.fileno()).st_size, chunks(fh)

    def download(self, name: str, target: Path) -> None:
        try:
            shutil.copyfile(self._path(name), target)
        except FileNotFoundError:
            raise NotFound(f"{name}: not found in {self.root}") from None

    def upload(self, name: str, source: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.partial"
        shutil.copyfile(source, tmp)
        tmp.rename(self._path(name))

    def write(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.partial"
        tmp.write_bytes(data)
        tmp.rename(self._path(name))

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)


def served_stream(address: str, token: str, name: str, *, timeout: float = 30) -> tuple[
    int, Iterator[bytes]
]:  # fmt: skip
    """Backup ``name`` from a reader pod (restore.py ``--serve`` at ``address``,
    ``host:port``) that hands it once to the holder of ``token``: its size in bytes and its
    content in chunks of up to 1 MiB, read as the caller iterates (the connection is closed
    at the end, or when the iterator is closed). StorageError when the reader refuses
    (403, 404), StorageUnavailable when it cannot be reached (connecting is retried for
    ``timeout`` seconds)."""
    import httpx

    client = httpx.Client(timeout=timeout)
    request = client.build_request(
        "GET", f"http://{address}/{name}", headers={"Authorization": f"Bearer {token}"}
    )
    # A reader is Ready once it listens, which its NetworkPolicy does not gate: the CNI may
    # let this connection through a moment later. Connecting is retried for ``timeout``.
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = client.send(request, stream=True)
            break
        except httpx.ConnectError as exc:
            if time.monotonic() < deadline:
                time.sleep(1)
                continue
            client.close()
            raise StorageUnavailable(f"the reader of {name} at {address}: {exc}") from None
        except httpx.HTTPError as exc:
            client.close()
            raise StorageUnavailable(f"the reader of {name} at {address}: {exc}") from None
    if answer.status_code != 200:
        answer.close()
        client.close()
        raise StorageError(f"the reader of {name} at {address} refused: HTTP {answer.status_code}")
    size = int(answer.headers.get("Content-Length") or 0)
    return size, _Answer(answer, client)


class _Answer:
    """A reader's answer as chunks of up to 1 MiB; ``close`` (also before the first chunk,
    where a generator's ``finally`` would not run) closes the connection."""

    def __init__(self, answer: Any, client: Any) -> None:
        self._answer, self._client = answer, client
        self._chunks = answer.iter_bytes(1 << 20)

    def __iter__(self) -> _Answer:
        return self

    def __next__(self) -> bytes:
        try:
            chunk: bytes = next(self._chunks)
        except StopIteration:
            self.close()
            raise
        return chunk

    def close(self) -> None:
        self._answer.close()
        self._client.close()

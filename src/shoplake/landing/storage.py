"""Where files land and where they are archived: a local folder or an S3-compatible bucket, one interface.

A store lists its files (path inside the store, size, modification time), hands out a local readable
copy of one, and moves a file to another store. On object storage a move is a copy then a delete, so a
crash between the two leaves the file in both places; `move` finishes such a half-done move when asked
again (the copy is compared by size and replaced) instead of failing.

Object storage is reached with boto3 and the standard AWS environment variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL for a non-AWS store); secrets never live in shoplake.yml.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shoplake.errors import ConfigError, ShoplakeError


@dataclass(frozen=True)
class Entry:
    relative: str  # path inside the store, with / separators
    size: int
    mtime: float  # seconds since the epoch


class Store(Protocol):
    uri: str

    def list(self) -> list[Entry]: ...

    def stat(self, relative: str) -> Entry | None: ...

    def local_copy(self, relative: str, cache: Path, *, reuse: bool = False) -> Path:
        """A local path holding the file's bytes (the file itself when the store is a folder); `reuse`
        takes a copy downloaded before (by the scan that hashed it) instead of downloading again."""
        ...

    def move(self, relative: str, target: Store, target_relative: str) -> None: ...

    def drop_copy(self, relative: str, cache: Path) -> None:
        """Forget the local copy `local_copy` made (nothing to do for a folder)."""
        ...

    def exists(self, relative: str) -> bool: ...

    def describe(self, relative: str) -> str:
        """How to name the file to a person: a path or a URI."""
        ...


def is_remote(location: str | Path) -> bool:
    return "://" in str(location)


def open_store(location: str | Path) -> Store:
    text = str(location)
    if text.startswith("s3://"):
        return S3Store(text)
    if is_remote(text):
        raise ConfigError(f"{text}: only local folders and s3:// URIs can hold landing and archive files")
    return LocalStore(Path(text))


def parent_of(location: str | Path) -> str | Path:
    """The folder (or prefix) holding a location: where the archive goes by default."""
    if isinstance(location, Path):
        return location.parent
    if is_remote(location):
        scheme, rest = location.split("://", 1)
        parts = rest.rstrip("/").split("/")
        return f"{scheme}://{'/'.join(parts[:-1]) or parts[0]}"
    return Path(location).parent


def child_of(location: str | Path, name: str) -> str | Path:
    if isinstance(location, Path):
        return location / name
    return f"{str(location).rstrip('/')}/{name}"


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)

    def list(self) -> list[Entry]:
        if not self.root.is_dir():
            return []
        entries = []
        for path in self.root.rglob("*"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # moved away while listing
            if path.is_file():
                entries.append(Entry(path.relative_to(self.root).as_posix(), stat.st_size, stat.st_mtime))
        return sorted(entries, key=lambda e: e.relative)

    def stat(self, relative: str) -> Entry | None:
        try:
            stat = (self.root / relative).stat()
        except FileNotFoundError:
            return None
        return Entry(relative, stat.st_size, stat.st_mtime)

    def local_copy(self, relative: str, cache: Path, *, reuse: bool = False) -> Path:
        return self.root / relative

    def drop_copy(self, relative: str, cache: Path) -> None:
        return None

    def exists(self, relative: str) -> bool:
        return (self.root / relative).exists()

    def describe(self, relative: str) -> str:
        return str(self.root / relative)

    def move(self, relative: str, target: Store, target_relative: str) -> None:
        source = self.root / relative
        if isinstance(target, LocalStore):
            destination = target.root / target_relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(destination))  # a rename within one file system: atomic
            return
        assert isinstance(target, S3Store)
        target.upload(source, target_relative)
        source.unlink()


class S3Store:
    def __init__(self, uri: str) -> None:
        rest = uri.removeprefix("s3://").rstrip("/")
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ConfigError(f"{uri}: an s3:// URI needs a bucket name")
        self.prefix = f"{prefix}/" if prefix else ""
        self.uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise ConfigError("s3:// locations need boto3", hint="pip install 'shoplake[s3]'") from None
            self._client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        return self._client

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except Exception as error:
            if type(error).__name__ in ("NoSuchKey", "ClientError") and "404" in str(error):
                raise FileNotFoundError(what) from None
            raise ShoplakeError(f"{what}: {error}",
                                hint="check AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and the bucket name") from None

    def list(self) -> list[Entry]:
        entries: list[Entry] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(f"listing {self.uri}", "list_objects_v2", Prefix=self.prefix, **token)
            for item in page.get("Contents", []):
                relative = item["Key"][len(self.prefix):]
                if relative and not relative.endswith("/"):
                    entries.append(Entry(relative, int(item["Size"]), item["LastModified"].timestamp()))
            if not page.get("IsTruncated"):
                return sorted(entries, key=lambda e: e.relative)
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def stat(self, relative: str) -> Entry | None:
        try:
            head = self._call(self.describe(relative), "head_object", Key=self.prefix + relative)
        except FileNotFoundError:
            return None
        return Entry(relative, int(head["ContentLength"]), head["LastModified"].timestamp())

    def exists(self, relative: str) -> bool:
        return self.stat(relative) is not None

    def describe(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{relative}"

    def _cached(self, relative: str, cache: Path) -> Path:
        return cache / self.bucket / (self.prefix + relative)

    def drop_copy(self, relative: str, cache: Path) -> None:
        self._cached(relative, cache).unlink(missing_ok=True)

    def local_copy(self, relative: str, cache: Path, *, reuse: bool = False) -> Path:
        local = self._cached(relative, cache)
        if reuse and local.exists():
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".part")
        self._call(f"downloading {self.describe(relative)}", "download_file", Key=self.prefix + relative,
                   Filename=str(partial))
        partial.replace(local)
        return local

    def upload(self, source: Path, relative: str) -> None:
        self._call(f"uploading {source} to {self.describe(relative)}", "upload_file", Key=self.prefix + relative,
                   Filename=str(source))

    def move(self, relative: str, target: Store, target_relative: str) -> None:
        key = self.prefix + relative
        if isinstance(target, S3Store):
            target._call(f"copying {self.describe(relative)}", "copy_object", Key=target.prefix + target_relative,
                         CopySource={"Bucket": self.bucket, "Key": key})
        else:
            assert isinstance(target, LocalStore)
            destination = target.root / target_relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            self._call(f"downloading {self.describe(relative)}", "download_file", Key=key,
                       Filename=str(destination))
        # Only once the copy is complete is the original deleted: a crash in between leaves two copies,
        # and the next attempt copies again and deletes.
        self._call(f"deleting {self.describe(relative)}", "delete_object", Key=key)

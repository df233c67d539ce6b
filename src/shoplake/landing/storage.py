"""Where files land and where they are archived: a local folder or an S3-compatible bucket, one interface.

A store lists its files (path inside the store, size, modification time), hands out a local readable
copy of one, and moves a file to another store. On object storage a move is a copy then a delete, so a
crash between the two leaves the file in both places; `move` finishes such a half-done move when asked
again (the copy is compared by size and replaced) instead of failing.

Object storage is reached with boto3 and the standard AWS environment variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL for a non-AWS store); secrets never live in shoplake.yml.

A store hands out only regular files inside it. In a folder, a symbolic link is never followed, wherever
it points (outside the folder, inside it, nowhere or to itself), and neither is anything that is not a
regular file (a pipe, a socket, a device): a link inside landing would be archived as a link, not as the
bytes that were loaded. Such entries are left out of `list()` and kept in `refused`, each with one line
saying what to do; each is also logged once (logger `shoplake.landing`) so that a person sees it. An
object key with `.` or `..` segments is refused the same way (its local copy would land outside the cache).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat as st
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shoplake.errors import ConfigError, FileRejected, ShoplakeError

log = logging.getLogger("shoplake.landing")


@dataclass(frozen=True)
class Entry:
    relative: str  # path inside the store, with / separators
    size: int
    mtime: float  # seconds since the epoch


@dataclass(frozen=True)
class Refused:
    """An entry of a store that is not read: what it is and what to do, for a person."""

    relative: str
    where: str  # the entry as `describe` names it
    reason: str  # one line: what it is, that it is not read, and what to do

    @property
    def message(self) -> str:
        return f"{self.where}: {self.reason}"


class Store(Protocol):
    uri: str
    refused: list[Refused]  # what the last `list()` left out, and why

    def list(self) -> list[Entry]:
        """The store's regular files; anything else goes to `refused` instead."""
        ...

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

    def delete(self, relative: str) -> None:
        """Remove a file (nothing to do when it is gone already)."""
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
        self.refused: list[Refused] = []
        self._told: set[Refused] = set()  # refusals logged already (again once gone and back)

    def list(self) -> list[Entry]:
        entries: list[Entry] = []
        refused: list[Refused] = []
        if not self.root.is_dir():  # the root itself may be a link: where landing lives is the user's choice
            self.refused = []
            return entries
        folders = [""]
        while folders:
            folder = folders.pop()
            try:
                with os.scandir(self.root / folder) as listing:
                    found = list(listing)
            except FileNotFoundError:
                continue  # removed while listing
            except OSError as error:
                refused.append(self._refusal(folder, f"folder cannot be listed ({error.strerror}); give shoplake "
                                                     "read access or move it out of landing"))
                continue
            for item in found:
                relative = f"{folder}/{item.name}" if folder else item.name
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # moved away while listing
                if st.S_ISDIR(info.st_mode):
                    folders.append(relative)
                elif st.S_ISREG(info.st_mode):
                    entries.append(Entry(relative, info.st_size, info.st_mtime))
                elif not item.name.startswith("."):  # hidden: a tool's lock or temporary file, never read
                    refused.append(self._refusal(relative, _why_not_read(Path(item.path), self.root)))
        self.refused = sorted(refused, key=lambda r: r.relative)
        self._told = _tell(self.refused, self._told)
        return sorted(entries, key=lambda e: e.relative)

    def _refusal(self, relative: str, reason: str) -> Refused:
        return Refused(relative, self.describe(relative), reason)

    def _regular(self, relative: str) -> os.stat_result | None:
        """The file's status if `relative` names a regular file inside the folder, reached without
        following a link (a link anywhere on the way, `..`, or anything else: None)."""
        parts = relative.split("/")
        if any(part in ("", ".", "..") for part in parts):
            return None
        path = self.root
        try:
            for part in parts[:-1]:
                path = path / part
                if not st.S_ISDIR(os.lstat(path).st_mode):
                    return None
            info = os.lstat(path / parts[-1])
        except OSError:
            return None
        return info if st.S_ISREG(info.st_mode) else None

    def stat(self, relative: str) -> Entry | None:
        info = self._regular(relative)
        return Entry(relative, info.st_size, info.st_mtime) if info else None

    def local_copy(self, relative: str, cache: Path, *, reuse: bool = False) -> Path:
        path = self.root / relative
        if self._regular(relative) is None and os.path.lexists(path):
            # It was a file when listed and is something else now: still nothing of it is read.
            raise FileRejected(self.describe(relative), _why_not_read(path, self.root))
        return path

    def drop_copy(self, relative: str, cache: Path) -> None:
        return None

    def exists(self, relative: str) -> bool:
        """Whether a regular file is there (a link or a folder of that name is not one)."""
        return self._regular(relative) is not None

    def describe(self, relative: str) -> str:
        return str(self.root / relative)

    def delete(self, relative: str) -> None:
        (self.root / relative).unlink(missing_ok=True)

    def move(self, relative: str, target: Store, target_relative: str) -> None:
        source = self.root / relative
        if self._regular(relative) is None:
            raise FileRejected(self.describe(relative), _why_not_read(source, self.root))
        if isinstance(target, LocalStore):
            destination = target.root / target_relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(destination))  # a rename within one file system: atomic
            return
        assert isinstance(target, S3Store)
        target.upload(source, target_relative)
        source.unlink()


def _tell(refused: list[Refused], told: set[Refused]) -> set[Refused]:
    """Log each refusal that the listing before did not have (a watcher lists every second); returns
    the refusals to remember as told."""
    for refusal in refused:
        if refusal not in told:
            log.warning("%s", refusal.message)
    return set(refused)


def _why_not_read(path: Path, root: Path) -> str:
    """Why an entry of a folder is not read, and what to do: for an entry that is not a regular file."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return f"cannot be read ({error.strerror}); check it, then drop the file again"
    if not st.S_ISLNK(info.st_mode):
        if st.S_ISREG(info.st_mode):  # a link on the way to it
            return "reached through a symbolic link, not read; move the file itself into landing"
        return "not a regular file (a pipe, socket or device), not read; remove it from landing"
    target = os.readlink(path)
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError:  # dangling, or a loop
        return f"symbolic link to {target}, which does not exist or loops back, not read; remove the link"
    if real.is_dir():
        return f"symbolic link to the folder {target}, not followed; move its files into landing or remove the link"
    if not real.is_relative_to(Path(os.path.realpath(root))):
        return (f"symbolic link to {target} (outside the landing folder), not read; copy the file itself into "
                "landing or remove the link")
    return (f"symbolic link to {target}, not read (landing takes regular files, not links); move the file itself "
            "here or remove the link")


class S3Store:
    def __init__(self, uri: str) -> None:
        rest = uri.removeprefix("s3://").rstrip("/")
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ConfigError(f"{uri}: an s3:// URI needs a bucket name")
        self.prefix = f"{prefix}/" if prefix else ""
        self.uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.refused: list[Refused] = []
        self._told: set[Refused] = set()
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
        refused: list[Refused] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(f"listing {self.uri}", "list_objects_v2", Prefix=self.prefix, **token)
            for item in page.get("Contents", []):
                relative = item["Key"][len(self.prefix):]
                if not relative or relative.endswith("/"):
                    continue  # a folder marker
                if any(part in ("", ".", "..") for part in relative.split("/")):
                    refused.append(Refused(relative, self.describe(relative),
                                           "key with an empty, `.` or `..` path segment, not read; rename the object"))
                    continue
                entries.append(Entry(relative, int(item["Size"]), item["LastModified"].timestamp()))
            if not page.get("IsTruncated"):
                break
            token = {"ContinuationToken": page["NextContinuationToken"]}
        self.refused = refused
        self._told = _tell(refused, self._told)
        return sorted(entries, key=lambda e: e.relative)

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

    def delete(self, relative: str) -> None:
        self._call(f"deleting {self.describe(relative)}", "delete_object", Key=self.prefix + relative)

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

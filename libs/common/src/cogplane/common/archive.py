"""Project archives: `cogplane push` packs a Cog project, the runner unpacks it.

Packing is deterministic, so the same tree always gives the same bytes. Unpacking treats the
archive as hostile: every member is checked before anything is written, sizes are counted as
bytes are decompressed, and a rejected archive leaves nothing behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import re
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cogplane.common.errors import CogplaneError

DEFAULT_MAX_PACK_BYTES = 500 * 1024**2
DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
DEFAULT_MAX_MEMBERS = 100_000

IGNORE_FILES = (".dockerignore", ".cogignore")
# The platform writes .cog/ itself; the rest is never part of a model.
ALWAYS_IGNORED = ("**/.git", ".cog", "**/__pycache__", "**/*.pyc")
# Like Docker, which always sends the Dockerfile, the runner cannot build without cog.yaml.
ALWAYS_PACKED = "cog.yaml"

_CHUNK = 1024 * 1024
# Decompressed bytes tar headers may take between members (pax records, long names, read-ahead).
_HEADER_ALLOWANCE = 1024 * 1024
_HEADER_BYTES_PER_MEMBER = 4096
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class ArchiveError(CogplaneError):
    """A project archive that cannot be packed or safely unpacked."""

    status = 422
    title = "Invalid archive"


# --- ignore rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnorePattern:
    """One cleaned .dockerignore pattern.

    Attributes:
        text: The pattern after Docker's cleaning, without the leading ``!``.
        negated: Whether the pattern re-includes what it matches.
        regex: The compiled pattern, anchored at both ends.
    """

    text: str
    negated: bool
    regex: re.Pattern[str]


@dataclass(frozen=True)
class IgnoreRules:
    """Which project paths are left out of the archive, with Docker's .dockerignore semantics.

    Attributes:
        patterns: The patterns in order; the last one that matches a path or a parent decides.
    """

    patterns: tuple[IgnorePattern, ...] = ()

    @classmethod
    def parse(cls, text: str, *, source: str = "ignore rules") -> IgnoreRules:
        """Parse the text of a .dockerignore file.

        Args:
            text: The file's content.
            source: The file's name, used in error messages.

        Returns:
            The rules, in file order.

        Raises:
            ArchiveError: A line is not a valid pattern.
        """
        patterns = []
        for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
            try:
                pattern = _parse_line(line)
            except ValueError as exc:
                raise ArchiveError(f"{source} line {number}: {line.strip()!r}: {exc}") from None
            if pattern is not None:
                patterns.append(pattern)
        return cls(tuple(patterns))

    def is_ignored(self, path: str) -> bool:
        """Whether a project-relative POSIX path is left out of the archive."""
        if path == ALWAYS_PACKED:
            return False
        return _matches(_ALWAYS_IGNORED.patterns, path) or _matches(self.patterns, path)

    def excludes_tree(self, path: str) -> bool:
        """Whether a directory is left out together with everything under it."""
        if _matches(_ALWAYS_IGNORED.patterns, path):
            return True
        can_reinclude = any(p.negated for p in self.patterns)
        return not can_reinclude and _matches(self.patterns, path)


def ignore_rules(root: Path) -> IgnoreRules:
    """The ignore rules of a project: its .dockerignore, then its .cogignore.

    Patterns follow Docker: Go ``filepath.Match`` syntax plus ``**``, a leading ``/`` is dropped,
    ``!`` re-includes, the last matching pattern wins, and a pattern matching a directory matches
    everything under it. ``.git``, ``__pycache__`` and ``*.pyc`` anywhere and the root ``.cog/``
    are always ignored; ``cog.yaml`` never is.

    Args:
        root: The project directory.

    Returns:
        The combined rules.

    Raises:
        ArchiveError: An ignore file has an invalid pattern.
    """
    patterns: list[IgnorePattern] = []
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            patterns.extend(IgnoreRules.parse(text, source=name).patterns)
    return IgnoreRules(tuple(patterns))


def _parse_line(line: str) -> IgnorePattern | None:
    # Mirrors moby's ignorefile.ReadAll and patternmatcher.New.
    if line.startswith("#"):
        return None
    text = line.strip()
    if not text:
        return None
    negated = text.startswith("!")
    if negated:
        text = text[1:].strip()
        if not text:
            raise ValueError("'!' must be followed by a pattern")
    text = _go_clean(text)
    if len(text) > 1 and text.startswith("/"):
        text = text[1:]
    try:
        regex = re.compile(_translate(text), re.DOTALL)
    except re.error as exc:
        raise ValueError(str(exc)) from None
    return IgnorePattern(text, negated, regex)


def _go_clean(path: str) -> str:
    cleaned = posixpath.normpath(path)
    # normpath keeps exactly two leading slashes (POSIX allows it); Go's Clean does not.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _translate(pattern: str) -> str:
    """The regex of a Docker pattern: Go filepath.Match syntax, plus ``**`` for any depth."""
    rest = pattern[2:]
    if pattern.startswith("**") and not any(c in rest for c in "*?[]\\"):
        # Docker's suffix shortcut: "**/foo" matches "foo" and "x/foo"; "**foo" also "xfoo".
        suffix = f"|{re.escape(rest[1:])}" if rest.startswith("/") else ""
        return f"^(?:.*{re.escape(rest)}{suffix})$"
    out, i = ["^"], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 3 if pattern.startswith("/", i + 2) else 2
            out.append(".*" if i >= len(pattern) else "(?:.*/)?")
            continue
        if char == "[":
            regex, i = _translate_class(pattern, i + 1)
            out.append(regex)
            continue
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        i += 1
    return "".join(out) + "$"


def _translate_class(pattern: str, i: int) -> tuple[str, int]:
    out = ["["]
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    ranges = 0
    while not (pattern.startswith("]", i) and ranges):
        low, i = _class_char(pattern, i)
        out.append(re.escape(low))
        if pattern.startswith("-", i):
            high, i = _class_char(pattern, i + 1)
            out.append("-" + re.escape(high))
        ranges += 1
    return "".join(out) + "]", i + 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern):
        raise ValueError("unclosed character class")
    if pattern[i] == "\\":
        if i + 1 >= len(pattern):
            raise ValueError("unclosed character class")
        return pattern[i + 1], i + 2
    if pattern[i] in "-]":
        raise ValueError(f"unexpected {pattern[i]!r} in character class")
    return pattern[i], i + 1


def _matches(patterns: Iterable[IgnorePattern], path: str) -> bool:
    # Docker's MatchesOrParentMatches: a pattern matching a parent directory matches the path.
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    matched = False
    for pattern in patterns:
        if pattern.negated != matched:
            continue
        if any(pattern.regex.match(c) for c in candidates):
            matched = not pattern.negated
    return matched


_ALWAYS_IGNORED = IgnoreRules.parse("\n".join(ALWAYS_IGNORED), source="built-in rules")


# --- walking a tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    rel: str
    path: Path
    mode: int
    size: int


def _walk(root: Path, rules: IgnoreRules | None) -> list[_Entry]:
    """Directories, files and symlinks under root, parents first, siblings sorted by name."""
    return _walk_dir(root, "", rules)


def _walk_dir(directory: Path, prefix: str, rules: IgnoreRules | None) -> list[_Entry]:
    entries: list[_Entry] = []
    for name in sorted(os.listdir(directory)):
        path, rel = directory / name, prefix + name
        info = path.lstat()
        entry = _Entry(rel, path, info.st_mode, info.st_size)
        ignored = rules is not None and rules.is_ignored(rel)
        if stat.S_ISDIR(info.st_mode):
            if rules is not None and ignored and rules.excludes_tree(rel):
                continue
            children = _walk_dir(path, rel + "/", rules)
            if not ignored or children:
                entries += [entry, *children]
        elif not ignored:
            _check_kind(entry)
            entries.append(entry)
    return entries


def _check_kind(entry: _Entry) -> None:
    if not (stat.S_ISREG(entry.mode) or stat.S_ISLNK(entry.mode)):
        raise ArchiveError(
            f"{entry.rel!r} is not a regular file, directory or symlink; "
            "remove it or add it to .cogignore"
        )


def _is_exec(mode: int) -> bool:
    return bool(mode & 0o111)


def _is_within(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _link_problem(rel: str, target: str) -> str | None:
    """Why a symlink at rel pointing at target would leave its tree, or None."""
    if not target:
        return "has an empty target"
    if target.startswith("/"):
        return f"points to the absolute path {target!r}"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if resolved == ".." or resolved.startswith("../"):
        return f"points to {target!r}, outside the project directory"
    return None


# --- packing ------------------------------------------------------------------------------------


def pack(root: Path, *, max_bytes: int = DEFAULT_MAX_PACK_BYTES) -> bytes:
    """Pack a Cog project into a deterministic gzip-compressed tar archive.

    Members are sorted, owners and times zeroed and modes reduced to 0o644/0o755, so the same
    tree always gives the same bytes. Ignored paths (see `ignore_rules`) are left out.

    Args:
        root: The project directory; it must contain ``cog.yaml``.
        max_bytes: Largest total size of the packed files, uncompressed.

    Returns:
        The archive.

    Raises:
        ArchiveError: There is no cog.yaml, the project is too large, a symlink points outside
            the project, or a path is neither a file, a directory nor a symlink.
    """
    if not (root / ALWAYS_PACKED).is_file():
        raise ArchiveError(f"{str(root)!r} has no {ALWAYS_PACKED}; is it a Cog project?")
    entries = _walk(root, ignore_rules(root))
    total = sum(e.size for e in entries if stat.S_ISREG(e.mode))
    if total > max_bytes:
        raise ArchiveError(
            f"the project is {total} bytes uncompressed, over the limit of {max_bytes} bytes; "
            "exclude large files with .cogignore"
        )
    real_root = os.path.realpath(root)
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for entry in entries:
            _add(tar, entry, real_root)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, entry: _Entry, real_root: str) -> None:
    info = tarfile.TarInfo(entry.rel)  # mtime, uid, gid 0 and empty names by default
    info.mode = 0o755
    if stat.S_ISDIR(entry.mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISLNK(entry.mode):
        info.type = tarfile.SYMTYPE
        info.linkname = _packed_link_target(entry, real_root)
        tar.addfile(info)
    else:
        info.mode = 0o755 if _is_exec(entry.mode) else 0o644
        info.size = entry.size
        with entry.path.open("rb") as content:
            tar.addfile(info, content)


def _packed_link_target(entry: _Entry, real_root: str) -> str:
    target = os.readlink(entry.path)
    problem = _link_problem(entry.rel, target)
    # A target inside on paper can still leave through another symlink ("s/../x" with s -> .).
    if problem is None and not _is_within(os.path.realpath(entry.path), real_root):
        problem = f"points to {target!r}, which resolves outside the project directory"
    if problem is not None:
        raise ArchiveError(f"symlink {entry.rel!r} {problem}")
    return target


# --- unpacking ----------------------------------------------------------------------------------


def unpack(
    data: bytes | BinaryIO,
    dest: Path,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> None:
    """Safely extract an untrusted project archive made by `pack`.

    Only regular files, directories and symlinks that stay inside ``dest`` are accepted. Files
    get mode 0o644, or 0o755 when any exec bit is set; owners and special bits are dropped.

    Args:
        data: The gzip-compressed tar archive, as bytes or a readable binary stream.
        dest: An empty or missing directory to extract into.
        max_total_bytes: Largest total size of the files, counted as they are decompressed.
        max_members: Largest number of members.

    Raises:
        ArchiveError: The archive is corrupt, too large, or has a member that is unsafe; nothing
            is left in ``dest``.
        ValueError: ``dest`` exists and is not an empty directory.
    """
    if isinstance(data, bytes):
        if not data:
            raise ArchiveError("the upload is empty")
        data = io.BytesIO(data)
    created = _prepare_destination(dest)
    try:
        _Extraction(dest, max_total_bytes, max_members).run(data)
    except BaseException:
        _clear_destination(dest, created=created)
        raise


def _prepare_destination(dest: Path) -> bool:
    """Create dest if missing; whether it was created here."""
    try:
        dest.mkdir(parents=True)
    except FileExistsError:
        if dest.is_symlink() or not dest.is_dir() or any(dest.iterdir()):
            raise ValueError(f"{dest} must be an empty directory or not exist") from None
        return False
    return True


def _clear_destination(dest: Path, *, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


class _LimitExceeded(Exception):
    """The decompressed stream grew past what its members can account for."""


class _BoundedReader:
    """Decompresses gzip and counts the bytes, refusing more than the current allowance.

    Tar headers are read into memory before any member is seen, so header bytes need a bound of
    their own; a gzip bomb hidden in a pax header stops here.
    """

    def __init__(self, source: BinaryIO, cap: int) -> None:
        self._gzip = gzip.GzipFile(fileobj=source, mode="rb")
        self._cap = cap
        self._limit = min(cap, _HEADER_ALLOWANCE)  # tarfile.open reads the first header
        self.consumed = 0

    def allow(self, amount: int) -> None:
        """Let tarfile read `amount` more decompressed bytes (and never past the cap)."""
        self._limit = min(self._cap, self.consumed + amount)

    def read(self, size: int = -1, /) -> bytes:
        room = self._limit - self.consumed
        chunk = self._gzip.read(room + 1 if size < 0 else min(size, room + 1))
        if len(chunk) > room:
            raise _LimitExceeded
        self.consumed += len(chunk)
        return chunk

    def write(self, b: bytes, /) -> int:
        raise io.UnsupportedOperation("write")

    def tell(self) -> int:
        return self.consumed

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("seek")

    def close(self) -> None:
        self._gzip.close()


_CORRUPT = (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError)


@dataclass
class _Extraction:
    dest: Path
    max_total_bytes: int
    max_members: int
    root: str = ""
    members: int = 0
    written: int = 0
    last: str | None = None
    links: list[tuple[str, str]] = field(default_factory=list)

    def run(self, source: BinaryIO) -> None:
        self.root = os.path.realpath(self.dest)
        cap = self.max_total_bytes + (self.max_members + 1) * _HEADER_BYTES_PER_MEMBER
        reader = _BoundedReader(source, cap)
        try:
            with tarfile.open(None, "r|", reader) as tar:
                self._extract_all(tar, reader)
        except _LimitExceeded:
            where = self._where() or " in its first header"
            raise ArchiveError(
                f"the archive expands past its size limit{where} (a gzip bomb?)"
            ) from None
        except _CORRUPT as exc:
            if isinstance(exc, tarfile.ReadError) and reader.consumed == 0:
                raise ArchiveError("the upload is empty") from None
            raise ArchiveError(
                f"the upload is not a valid gzip-compressed tar archive{self._where()}: {exc}"
            ) from None
        finally:
            reader.close()
        self._check_links()

    def _where(self) -> str:
        return f" at or after member {self.last!r}" if self.last else ""

    def _extract_all(self, tar: tarfile.TarFile, reader: _BoundedReader) -> None:
        while True:
            reader.allow(_HEADER_ALLOWANCE)
            member = tar.next()
            if member is None:
                return
            self.members += 1
            if self.members > self.max_members:
                raise ArchiveError(
                    f"member {member.name!r} is one too many: "
                    f"archives hold at most {self.max_members} members"
                )
            self.last = member.name
            reader.allow((member.size if member.isreg() else 0) + _HEADER_ALLOWANCE)
            self._extract(tar, member)

    def _extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = _member_path(member)
        _check_member_type(member)
        if rel is None:
            if not member.isdir():
                raise ArchiveError(f"member {member.name!r} would replace the destination")
            return  # a "." directory entry is dest itself
        if member.issym():
            problem = _link_problem(rel, member.linkname)
            if problem is not None:
                raise ArchiveError(f"symlink member {member.name!r} {problem}")
        try:
            tarfile.data_filter(member, self.root)  # a second opinion from the standard library
        except tarfile.FilterError as exc:
            raise ArchiveError(f"member {member.name!r} is unsafe: {exc}") from None
        try:
            self._create(tar, member, self._make_parents(rel, member.name))
        except FileExistsError:
            raise ArchiveError(f"member {member.name!r} clashes with an earlier member") from None
        except OSError as exc:
            raise ArchiveError(f"member {member.name!r} cannot be extracted: {exc}") from None

    def _make_parents(self, rel: str, name: str) -> str:
        """Create the member's parent directories, never passing through a symlink."""
        path = self.root
        for part in rel.split("/")[:-1]:
            path = os.path.join(path, part)
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                continue
            if stat.S_ISLNK(info.st_mode):
                raise ArchiveError(f"member {name!r} would be written through symlink {part!r}")
            if not stat.S_ISDIR(info.st_mode):
                raise ArchiveError(f"member {name!r} is inside {part!r}, which is not a directory")
        return os.path.join(self.root, rel)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: str) -> None:
        if member.isdir():
            if not os.path.isdir(target) or os.path.islink(target):
                os.mkdir(target, 0o755)
            os.chmod(target, 0o755)  # noqa: S103 - the umask must not change modes
        elif member.issym():
            os.symlink(member.linkname, target)
            self.links.append((member.name, target))
        else:
            self._write_file(tar, member, target)

    def _write_file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: str) -> None:
        self._check_room(member.size, member.name)  # refuse a declared bomb before inflating it
        content = tar.extractfile(member)
        if content is None:  # pragma: no cover - regular members always have content
            raise ArchiveError(f"member {member.name!r} has no content")
        descriptor = os.open(target, _OPEN_FLAGS, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            os.fchmod(out.fileno(), 0o755 if _is_exec(member.mode) else 0o644)
            while chunk := content.read(_CHUNK):
                self._check_room(len(chunk), member.name)
                self.written += len(chunk)
                out.write(chunk)

    def _check_room(self, amount: int, name: str) -> None:
        if self.written + amount > self.max_total_bytes:
            raise ArchiveError(
                f"member {name!r} takes the archive past {self.max_total_bytes} bytes uncompressed"
            )

    def _check_links(self) -> None:
        # Checked once all members exist: "a -> s/../x" is harmless until "s -> ." arrives.
        for name, path in self.links:
            if not _is_within(os.path.realpath(path), self.root):
                raise ArchiveError(f"symlink member {name!r} resolves outside the destination")


def _member_path(member: tarfile.TarInfo) -> str | None:
    """The member's path relative to dest, or None for dest itself."""
    name = member.name
    if not name or "\0" in name:
        raise ArchiveError(f"member {name!r} has an invalid name")
    if name.startswith("/"):
        raise ArchiveError(f"member {name!r} has an absolute path")
    parts = name.split("/")
    if ".." in parts:
        raise ArchiveError(f"member {name!r} escapes the project directory")
    kept = [part for part in parts if part not in ("", ".")]
    return "/".join(kept) or None


def _check_member_type(member: tarfile.TarInfo) -> None:
    if member.isreg() or member.isdir() or member.issym():
        return
    if member.islnk():
        kind = f"a hard link (to {member.linkname!r})"
    elif member.ischr() or member.isblk():
        kind = "a device file"
    elif member.isfifo():
        kind = "a FIFO"
    else:
        kind = f"of unsupported type {member.type!r}"
    raise ArchiveError(f"member {member.name!r} is {kind}; only files, directories and symlinks")


# --- digests ------------------------------------------------------------------------------------


def tree_digest(root: Path, *, rules: IgnoreRules | None = None) -> str:
    """A sha256 of a tree's content, independent of times, owners and the archive format.

    Covers the sorted relative paths of files and symlinks, each file's exec bit and content
    hash, and each symlink's target; directories count only through what they hold.

    Args:
        root: The directory.
        rules: Leave out what these rules ignore, to predict the digest of the unpacked archive
            (``tree_digest(unpacked) == tree_digest(project, rules=ignore_rules(project))``).

    Returns:
        The hex digest.

    Raises:
        ArchiveError: The tree holds something other than files, directories and symlinks.
    """
    digest = hashlib.sha256()
    for entry in sorted(_walk(root, rules), key=lambda e: e.rel):
        for record_field in _digest_record(entry):
            digest.update(record_field.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _digest_record(entry: _Entry) -> Iterator[str]:
    if stat.S_ISREG(entry.mode):
        yield from ("file", entry.rel, "x" if _is_exec(entry.mode) else "-")
        yield _file_sha256(entry.path)
    elif stat.S_ISLNK(entry.mode):
        yield from ("link", entry.rel, os.readlink(entry.path))


def _file_sha256(path: Path) -> str:
    with path.open("rb") as content:
        return hashlib.file_digest(content, "sha256").hexdigest()

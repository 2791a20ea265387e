import gzip
import io
import os
import random
import re
import stat
import tarfile
from pathlib import Path

import pytest

from cogplane.common.archive import (
    ArchiveError,
    IgnoreRules,
    ignore_rules,
    pack,
    tree_digest,
    unpack,
)

MiB = 1024**2


def _write(path: Path, content: str | bytes = "", mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


def _project(root: Path) -> Path:
    _write(root / "cog.yaml", "build:\n  python_version: '3.11'\npredict: predict.py:Predictor\n")
    _write(root / "predict.py", "class Predictor: ...\n")
    _write(root / "scripts" / "setup.sh", "#!/bin/sh\necho ready\n", mode=0o755)
    _write(root / "weights" / "model.bin", bytes(range(256)) * 64)
    _write(root / "empty.txt")
    (root / "assets").mkdir()
    os.symlink("../weights/model.bin", root / "scripts" / "model.bin")
    os.symlink("weights", root / "current")
    return root


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def _packed_names(root: Path) -> set[str]:
    return set(_members(pack(root)))


# --- malicious archives, built by hand ----------------------------------------------------------


def _file(name: str, content: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(content), mode
    return info, content


def _entry(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, b""


def _dir(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, bytes]:
    info, content = _entry(name, tarfile.DIRTYPE)
    info.mode = mode
    return info, content


def _symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return _entry(name, tarfile.SYMTYPE, target)


def _archive(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


def _assert_left_empty(dest: Path) -> None:
    assert not dest.exists() or not any(dest.iterdir())


# --- pack and unpack ----------------------------------------------------------------------------


def test_round_trip_preserves_content_exec_bits_symlinks_and_digest(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    dest = tmp_path / "dest"

    unpack(pack(project), dest)

    for name in ("cog.yaml", "predict.py", "scripts/setup.sh", "weights/model.bin", "empty.txt"):
        assert (dest / name).read_bytes() == (project / name).read_bytes()
    assert stat.S_IMODE((dest / "scripts" / "setup.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "predict.py").stat().st_mode) == 0o644
    assert (dest / "assets").is_dir()
    assert os.readlink(dest / "scripts" / "model.bin") == "../weights/model.bin"
    assert (dest / "current" / "model.bin").read_bytes() == (
        project / "weights/model.bin"
    ).read_bytes()
    assert tree_digest(dest) == tree_digest(project)


def test_digest_of_unpacked_tree_equals_digest_of_project_without_ignored_files(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path / "project")
    _write(project / ".dockerignore", "*.log\n")
    _write(project / "debug.log", "noise")
    _write(project / ".git" / "HEAD", "ref: refs/heads/main\n")
    _write(project / "__pycache__" / "predict.cpython-311.pyc", b"\0")
    clean = _project(tmp_path / "clean")
    _write(clean / ".dockerignore", "*.log\n")
    dest = tmp_path / "dest"

    unpack(pack(project), dest)

    assert tree_digest(dest) == tree_digest(clean)
    assert tree_digest(dest) == tree_digest(project, rules=ignore_rules(project))
    assert tree_digest(dest) != tree_digest(project)


def test_unpack_reads_from_a_stream(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")

    unpack(io.BytesIO(pack(project)), tmp_path / "dest")

    assert tree_digest(tmp_path / "dest") == tree_digest(project)


def test_unpack_into_an_existing_empty_directory(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    dest = tmp_path / "dest"
    dest.mkdir()

    unpack(pack(project), dest)

    assert (dest / "cog.yaml").is_file()


def test_unpack_refuses_a_destination_that_is_not_empty(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _write(tmp_path / "dest" / "existing.txt", "keep me")

    with pytest.raises(ValueError, match="empty"):
        unpack(pack(project), tmp_path / "dest")

    assert (tmp_path / "dest" / "existing.txt").read_text() == "keep me"


def test_unpack_accepts_dot_slash_names_from_other_tar_tools(tmp_path: Path) -> None:
    data = _archive(_dir("."), _dir("./src"), _file("./src/a.py", b"print(1)\n"))

    unpack(data, tmp_path / "dest")

    assert (tmp_path / "dest" / "src" / "a.py").read_bytes() == b"print(1)\n"


def test_unpack_normalises_permissions(tmp_path: Path) -> None:
    data = _archive(
        _dir("private", mode=0o700),
        _file("setuid", mode=0o4777),
        _file("secret", mode=0o600),
        _file("group-exec", mode=0o610),
    )
    dest = tmp_path / "dest"

    unpack(data, dest)

    def mode(name: str) -> int:
        return stat.S_IMODE((dest / name).stat().st_mode)

    assert (mode("private"), mode("setuid"), mode("secret")) == (0o755, 0o755, 0o644)
    assert mode("group-exec") == 0o755


# --- determinism --------------------------------------------------------------------------------


def test_pack_is_deterministic(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")

    first = pack(project)
    for path in project.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000), follow_symlinks=False)
    (project / "predict.py").chmod(0o600)
    (project / "scripts" / "setup.sh").chmod(0o700)

    assert pack(project) == first
    assert pack(project) == pack(_project(tmp_path / "copy"))


def test_pack_normalises_headers(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    (project / "predict.py").chmod(0o4775)

    data = pack(project)
    members = _members(data)

    assert data[4:8] == b"\0\0\0\0"  # gzip mtime
    assert list(members) == sorted(members, key=lambda n: n.split("/"))
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {
        (0, 0, 0, "", "")
    }
    assert members["predict.py"].mode == 0o755
    assert members["cog.yaml"].mode == 0o644
    assert members["assets"].isdir()
    assert members["current"].issym()


def test_tree_digest_ignores_times_but_not_content_or_exec_bits(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    original = tree_digest(project)

    os.utime(project / "predict.py", (1, 1))
    assert tree_digest(project) == original
    (project / "predict.py").chmod(0o755)
    assert tree_digest(project) != original
    (project / "predict.py").chmod(0o644)
    (project / "predict.py").write_text("changed\n")
    assert tree_digest(project) != original


# --- ignore rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "path", "ignored"),
    [
        ("*.log", "debug.log", True),
        ("*.log", "logs/debug.log", False),
        ("**/*.log", "logs/deep/debug.log", True),
        ("**/*.log", "debug.log", True),
        ("/build", "build/lib/x.so", True),
        ("build/", "build/x", True),
        ("build/", "rebuild/x", False),
        ("data/**", "data/a/b.csv", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/y/c", False),
        ("**/tmp", "tmp", True),
        ("**/tmp", "src/tmp/x", True),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file12.txt", False),
        ("[a-c].txt", "b.txt", True),
        ("[a-c].txt", "d.txt", False),
        ("[^a].txt", "a.txt", False),
        ("[^a].txt", "b.txt", True),
        ("\\*.txt", "*.txt", True),
        ("\\*.txt", "a.txt", False),
        ("./docs/../tmp", "tmp/x", True),
        ("*\n!keep.txt", "keep.txt", False),
        ("*\n!keep.txt", "other.txt", True),
        ("build\n!build/keep", "build/keep", False),
        ("build\n!build/keep", "build/other", True),
        ("!keep\nkeep", "keep", True),
        ("keep\n!keep", "keep", False),
        ("# a comment\n\n   \n", "# a comment", False),
        ("  spaced.txt  ", "spaced.txt", True),
        ("*", "cog.yaml", False),
        ("", ".git/HEAD", True),
        ("", "vendor/lib/.git", True),
        ("", ".cog/openapi_schema.json", True),
        ("", "src/.cog/notes", False),
        ("", "pkg/__pycache__/m.cpython-311.pyc", True),
        ("", "pkg/m.pyc", True),
        ("!.git\n!.git/**\n!.cog/**\n!*.pyc", ".git/config", True),
        ("!.git\n!.git/**\n!.cog/**\n!*.pyc", ".cog/openapi_schema.json", True),
        ("!.git\n!.git/**\n!.cog/**\n!*.pyc", "m.pyc", True),
    ],
)
def test_ignore_rules_follow_dockerignore_semantics(rules: str, path: str, ignored: bool) -> None:
    assert IgnoreRules.parse(rules).is_ignored(path) is ignored


@pytest.mark.parametrize("line", ["[a", "!", "x[]", "[z-a]", "a[\\"])
def test_invalid_patterns_name_the_file_and_line(tmp_path: Path, line: str) -> None:
    _write(tmp_path / ".cogignore", f"# header\n{line}\n")

    with pytest.raises(ArchiveError, match=r"\.cogignore line 2"):
        ignore_rules(tmp_path)


def test_cogignore_is_read_after_dockerignore(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _write(project / ".dockerignore", "*.bin\nweights\n")
    _write(project / ".cogignore", "!weights/model.bin\nscripts/\n")
    _write(project / "extra.bin", b"\1")

    names = _packed_names(project)

    assert "weights/model.bin" in names
    assert "weights" in names  # the parent of a re-included file
    assert "extra.bin" not in names
    assert not {n for n in names if n.startswith("scripts")}


def test_pack_leaves_out_ignored_and_always_ignored_paths(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _write(project / ".dockerignore", "/data\n**/*.tmp\n!data/README.md\n")
    _write(project / "data" / "huge.csv", "1,2,3\n")
    _write(project / "data" / "README.md", "about the data\n")
    _write(project / "src" / "deep" / "scratch.tmp", "x")
    _write(project / ".git" / "HEAD", "ref: refs/heads/main\n")
    _write(project / ".cog" / "openapi_schema.json", "{}")
    _write(project / "src" / "__pycache__" / "m.cpython-311.pyc", b"\0")
    _write(project / "src" / "m.pyc", b"\0")
    _write(project / "src" / "m.py", "")

    names = _packed_names(project)

    assert {"data", "data/README.md", "src", "src/deep", "src/m.py", ".dockerignore"} <= names
    for left_out in ("data/huge.csv", "src/deep/scratch.tmp", ".git", ".git/HEAD", ".cog"):
        assert left_out not in names
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc")}


def test_pack_always_includes_cog_yaml(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _write(project / ".dockerignore", "*\n")

    assert _packed_names(project) == {"cog.yaml"}


# --- pack errors --------------------------------------------------------------------------------


def test_pack_requires_cog_yaml(tmp_path: Path) -> None:
    _write(tmp_path / "predict.py", "")

    with pytest.raises(ArchiveError, match=re.escape("no cog.yaml")):
        pack(tmp_path)


def test_pack_refuses_projects_over_the_size_limit(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _write(project / "big.bin", b"\0" * 4096)

    with pytest.raises(ArchiveError, match="over the limit of 4096 bytes") as caught:
        pack(project, max_bytes=4096)

    assert caught.value.status == 422
    assert caught.value.title == "Invalid archive"


def test_pack_size_limit_does_not_count_ignored_files(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _write(project / "big.bin", b"\0" * 1_000_000)
    _write(project / ".cogignore", "big.bin\n")

    pack(project, max_bytes=100_000)


@pytest.mark.parametrize(
    ("name", "target", "message"),
    [
        ("etc", "/etc", "symlink 'etc' points to the absolute path '/etc'"),
        ("sub/up", "../../outside", "symlink 'sub/up' points to '../../outside', outside"),
        ("a", "s/../outside", "symlink 'a' points to 's/../outside', which resolves outside"),
    ],
)
def test_pack_refuses_symlinks_leaving_the_project(
    tmp_path: Path, name: str, target: str, message: str
) -> None:
    project = _project(tmp_path / "project")
    (project / "sub").mkdir()
    os.symlink(".", project / "s")
    os.symlink(target, project / name)

    with pytest.raises(ArchiveError, match=re.escape(message)):
        pack(project)


def test_pack_refuses_special_files(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    os.mkfifo(project / "pipe")

    with pytest.raises(ArchiveError, match="'pipe' is not a regular file"):
        pack(project)


# --- unpack errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "message"),
    [
        pytest.param([_file("/etc/evil")], "'/etc/evil' has an absolute path", id="absolute"),
        pytest.param([_file("../evil")], "'../evil' escapes", id="traversal"),
        pytest.param([_dir("a"), _file("a/../../x")], "'a/../../x' escapes", id="nested"),
        pytest.param([_file("ok"), _dir("..")], "'..' escapes", id="parent-dir"),
        pytest.param([_symlink("etc", "/etc")], "'etc' points to the absolute path", id="abs-link"),
        pytest.param(
            [_dir("a"), _symlink("a/up", "../../outside")],
            "'a/up' points to '../../outside', outside",
            id="dotdot-link",
        ),
        pytest.param(
            [_dir("sub"), _symlink("sub/link", "sub/../../..")],
            "'sub/link' points to",
            id="dotdot-link-in-middle",
        ),
        pytest.param(
            [_dir("sub"), _symlink("link", "sub"), _file("link/evil")],
            "'link/evil' would be written through symlink 'link'",
            id="write-through-internal-link",
        ),
        pytest.param(
            [_symlink("a", "s/../outside"), _symlink("s", ".")],
            "'a' resolves outside the destination",
            id="link-escaping-through-later-link",
        ),
        pytest.param(
            [_file("a"), _entry("b", tarfile.LNKTYPE, "a")], "'b' is a hard link", id="hard-link"
        ),
        pytest.param(
            [_entry("passwd", tarfile.LNKTYPE, "/etc/passwd")],
            "'passwd' is a hard link",
            id="hard-link-outside",
        ),
        pytest.param([_entry("null", tarfile.CHRTYPE)], "'null' is a device", id="char-device"),
        pytest.param([_entry("sda", tarfile.BLKTYPE)], "'sda' is a device", id="block-device"),
        pytest.param([_entry("pipe", tarfile.FIFOTYPE)], "'pipe' is a FIFO", id="fifo"),
        pytest.param([_entry("odd", b"V")], "'odd' is of unsupported type", id="unknown-type"),
        pytest.param(
            [_symlink("x", "y"), _file("x")], "'x' clashes with an earlier member", id="duplicate"
        ),
        pytest.param(
            [_file("a"), _file("a/b")], "'a/b' is inside 'a', which is not a directory", id="nest"
        ),
        pytest.param([_file(".")], "'.' would replace the destination", id="dot-file"),
    ],
)
def test_unpack_rejects_unsafe_members(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], message: str
) -> None:
    dest = tmp_path / "dest"

    with pytest.raises(ArchiveError, match=re.escape(message)):
        unpack(_archive(_file("cog.yaml", b"build: {}\n"), *members), dest)

    assert not dest.exists()


def test_symlink_to_outside_then_file_through_it_writes_nothing_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    data = _archive(_symlink("link", str(outside)), _file("link/evil", b"pwned"))

    with pytest.raises(ArchiveError, match="symlink member 'link' points to the absolute path"):
        unpack(data, dest)

    assert not any(outside.iterdir())
    assert not dest.exists()


def test_rejected_archive_leaves_an_existing_destination_empty(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    data = _archive(_dir("src"), _file("src/a.py"), _symlink("src/l", "a.py"), _file("../x"))

    with pytest.raises(ArchiveError, match=re.escape("'../x' escapes")):
        unpack(data, dest)

    assert dest.is_dir()
    _assert_left_empty(dest)


def test_unpack_limits_the_member_count(tmp_path: Path) -> None:
    data = _archive(*(_file(f"f{n}") for n in range(5)))

    with pytest.raises(ArchiveError, match="member 'f4' is one too many"):
        unpack(data, tmp_path / "dest", max_members=4)

    _assert_left_empty(tmp_path / "dest")
    unpack(data, tmp_path / "ok", max_members=5)


def test_unpack_rejects_a_gzip_bomb(tmp_path: Path) -> None:
    data = _archive(_file("cog.yaml"), _file("zeros.bin", b"\0" * (16 * MiB)))
    assert len(data) < 100_000

    with pytest.raises(
        ArchiveError, match=re.escape("member 'zeros.bin' takes the archive past 1048576")
    ):
        unpack(data, tmp_path / "dest", max_total_bytes=MiB)

    _assert_left_empty(tmp_path / "dest")


def test_unpack_counts_the_total_across_members(tmp_path: Path) -> None:
    data = _archive(*(_file(f"part{n}", b"\0" * 400_000) for n in range(3)))

    with pytest.raises(ArchiveError, match="member 'part2' takes the archive past"):
        unpack(data, tmp_path / "dest", max_total_bytes=MiB)

    _assert_left_empty(tmp_path / "dest")
    unpack(data, tmp_path / "ok", max_total_bytes=1_200_000)


def test_unpack_rejects_a_gzip_bomb_hidden_in_a_header(tmp_path: Path) -> None:
    info, content = _file("after-bomb")
    info.pax_headers = {"comment": "A" * (8 * MiB)}
    data = _archive(_file("cog.yaml"), (info, content))
    assert len(data) < 100_000

    with pytest.raises(
        ArchiveError, match=re.escape("past its size limit at or after member 'cog.yaml'")
    ):
        unpack(data, tmp_path / "dest")

    _assert_left_empty(tmp_path / "dest")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "the upload is empty", id="empty-bytes"),
        pytest.param(io.BytesIO(b""), "the upload is empty", id="empty-stream"),
        pytest.param(b"PK\x03\x04 this is a zip", "not a valid gzip-compressed tar", id="not-gzip"),
        pytest.param(gzip.compress(b"just text, not tar" * 100), "not a valid", id="gzip-not-tar"),
        pytest.param(
            gzip.compress(bytes(range(256)) * 64, mtime=0)[:-30], "not a valid", id="truncated"
        ),
    ],
)
def test_unpack_rejects_corrupt_uploads(
    tmp_path: Path, data: bytes | io.BytesIO, message: str
) -> None:
    with pytest.raises(ArchiveError, match=re.escape(message)):
        unpack(data, tmp_path / "dest")

    _assert_left_empty(tmp_path / "dest")


def test_unpack_rejects_an_uncompressed_tar(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info, content = _file("cog.yaml")
        tar.addfile(info, io.BytesIO(content))

    with pytest.raises(ArchiveError, match="not a valid gzip-compressed tar"):
        unpack(buffer.getvalue(), tmp_path / "dest")


def test_unpack_rejects_an_archive_truncated_after_members(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _write(project / "zz.bin", random.Random(0).randbytes(200_000))
    data = pack(project)

    with pytest.raises(ArchiveError, match="not a valid gzip-compressed tar archive at or after"):
        unpack(data[: len(data) // 2], tmp_path / "dest")

    _assert_left_empty(tmp_path / "dest")


def test_limits_are_inclusive_and_leave_room_for_long_headers(tmp_path: Path) -> None:
    long_dir = "d" * 200
    members = [_file(f"{long_dir}/{n:03}-{'n' * 150}", b"x") for n in range(500)]

    unpack(_archive(*members), tmp_path / "dest", max_total_bytes=500, max_members=500)

    assert len(list((tmp_path / "dest" / long_dir).iterdir())) == 500

"""A version's working directory: coglet's CWD, with the schema where coglet looks for it.

coglet validates inputs only against ``.cog/openapi_schema.json`` relative to its CWD, and
models open files relative to it too, so each version gets a copy of its project with the
schema the build produced. The copy is made once per version and shared by its instances; it
appears atomically (made aside, then renamed), so an instance never sees half of it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(".cog") / "openapi_schema.json"


class Workdirs:
    """The working directories of versions under ``root``, made one at a time per version."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, version_id: str, source: Path, schema: dict[str, Any]) -> Path:
        """``root/<version_id>``, made from ``source`` and ``schema`` unless already there."""
        async with self._locks.setdefault(version_id, asyncio.Lock()):
            return await asyncio.to_thread(_make, self.root / version_id, source, schema)


def _make(target: Path, source: Path, schema: dict[str, Any]) -> Path:
    if (target / SCHEMA_PATH).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)  # what an interrupted copy left
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        shutil.copytree(source, scratch, symlinks=True, dirs_exist_ok=True)
        (scratch / SCHEMA_PATH).parent.mkdir(exist_ok=True)
        (scratch / SCHEMA_PATH).write_text(json.dumps(schema), encoding="utf-8")
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target

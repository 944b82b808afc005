"""The tailer's saved state: a JSON-serialisable dict of its followed files, and back.

The format is part of every checkpoint (``exporter.state.checkpoint``): a state written by an
older exporter must resume at the same offsets, so fields are only ever added, with defaults.
"""

from __future__ import annotations

from typing import Any

from exporter.ingest.tail_files import TailedFile

STATE_VERSION = 1


def dump_state(rotations: int, files: list[TailedFile]) -> dict:
    return {
        "version": STATE_VERSION,
        "rotations": rotations,
        "files": [
            {
                "id": f.rid,
                "path": f.path,
                "dev": f.dev,
                "ino": f.ino,
                "fingerprint": f.fp.hex(),
                "offset": f.offset,
                "data_start": f.data_start,
                "header": None if f.header is None else f.header.hex(),
                "inherited": f.inherited,
                "prev_header": None if f.prev_header is None else f.prev_header.hex(),
                "skipping": f.skipping,
                "current": f.current,
                "copy_of": None if f.copy_of is None else f.copy_of.rid,
            }
            for f in files
        ],
    }


def load_state(state: dict[str, Any], source: str) -> tuple[int, list[TailedFile]]:
    """(rotations, files) of a saved state; ValueError if it is not one."""
    try:
        if state.get("version", STATE_VERSION) != STATE_VERSION:
            raise ValueError(f"unsupported version {state.get('version')!r}")
        rotations = int(state["rotations"])
        files: dict[int, TailedFile] = {}
        links: dict[int, Any] = {}
        for item in state["files"]:
            f = TailedFile(
                rid=int(item["id"]),
                path=str(item["path"]),
                dev=int(item["dev"]),
                ino=int(item["ino"]),
                fp=bytes.fromhex(item["fingerprint"]),
                header=_unhex(item.get("header")),
                inherited=bool(item.get("inherited", False)),
                prev_header=_unhex(item.get("prev_header")),
                data_start=int(item["data_start"]),
                offset=int(item["offset"]),
                skipping=bool(item["skipping"]),
                current=bool(item.get("current", True)),
            )
            files[f.rid] = f
            links[f.rid] = item.get("copy_of")
        for rid, original in links.items():
            if original is not None:
                files[rid].copy_of = files[int(original)]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"invalid tailer state for {source!r}: {exc}") from exc
    return rotations, list(files.values())


def _unhex(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a hex string, got {value!r}")
    return bytes.fromhex(value)

"""Tests for exporter.ingest.tailer, named after the rules written in the docstrings of the
exporter.ingest.tail_* modules (tailer's docstring says which rule is where).

Real files in tmp_path, rotated the way logrotate does it (os.rename + create; shutil.copyfile
+ os.truncate for copytruncate); every test calls poll() itself, nothing sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

from exporter.ingest.tail_read import Chunk, split_complete_lines
from exporter.ingest.tailer import Tailer

HEADER = b"id,value\n"


# --- helpers ---------------------------------------------------------------------------
def write(path: Path, *parts: bytes) -> None:
    with open(path, "ab") as f:
        for part in parts:
            f.write(part)


def rows(*ids: int | str) -> bytes:
    return b"".join(f"{i},v{i}\n".encode() for i in ids)


def lines_of(chunks: Iterable[Chunk]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        assert chunk.data == b"" or chunk.data.endswith(b"\n")
        out.extend(chunk.data.split(b"\n")[:-1])
    return out


def ids_of(chunks: Iterable[Chunk]) -> list[str]:
    return [line.split(b",")[0].decode() for line in lines_of(chunks)]


def poll(tailer: Tailer) -> list[Chunk]:
    return list(tailer.poll())


def restart(tailer: Tailer, tmp_path: Path, source: str, **kwargs: object) -> Tailer:
    """Simulate a restart: the state goes through JSON, the old tailer is killed."""
    state = json.loads(json.dumps(tailer.state()))
    tailer.close()
    return Tailer(source, base_dir=tmp_path, state=state, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def events() -> list[tuple[str, str]]:
    return []


def csv_tailer(tmp_path: Path, source: str = "preds.csv", **kwargs: object) -> Tailer:
    return Tailer(source, fmt="csv", base_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def read_once(tmp_path: Path, *ids: int) -> tuple[Path, Tailer]:
    """preds.csv with rows `ids`, and a tailer of it that has read them."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(*ids))
    tailer = csv_tailer(tmp_path)
    poll(tailer)
    return log, tailer


# --- offsets and header ---------------------------------------------------------------------
def test_partial_last_line_consumed_only_after_newline(tmp_path: Path) -> None:
    """A line without its newline yet is left in the file and read once it is complete."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1), b"2,v")
    tailer = csv_tailer(tmp_path)
    chunks = poll(tailer)
    assert ids_of(chunks) == ["1"]
    assert chunks[-1].end_offset == len(HEADER) + len(rows(1))
    assert poll(tailer) == []
    write(log, b"2\n")
    chunks = poll(tailer)
    assert lines_of(chunks) == [b"2,v2"]
    assert tailer.state()["files"][0]["offset"] == log.stat().st_size


def test_csv_header_is_not_data_and_waits_until_complete(tmp_path: Path) -> None:
    """The first line of a CSV file is its header: passed with each chunk, never as data."""
    log = tmp_path / "preds.csv"
    write(log, b"id,val")
    tailer = csv_tailer(tmp_path)
    assert poll(tailer) == []
    assert tailer.stats().up
    write(log, b"ue\r\n", rows(1))
    (chunk,) = poll(tailer)
    assert chunk.header == b"id,value"
    assert chunk.data == b"1,v1\n"
    assert chunk.source == "preds.csv"
    assert chunk.path == str(log)


def test_jsonl_has_no_header_and_crlf_is_left_to_the_parser(tmp_path: Path) -> None:
    """JSON Lines start at byte 0; a \\r before the newline stays in the data."""
    log = tmp_path / "preds.jsonl"
    write(log, b'{"id": 1}\r\n{"id": 2}\n')
    tailer = Tailer("preds.jsonl", fmt="jsonl", base_dir=tmp_path)
    (chunk,) = poll(tailer)
    assert chunk.header is None
    assert chunk.data == b'{"id": 1}\r\n{"id": 2}\n'


def test_chunks_respect_chunk_bytes_and_a_longer_line_is_read_whole(tmp_path: Path) -> None:
    """Chunks hold about chunk_bytes; a line longer than a chunk (but allowed) still comes whole."""
    log = tmp_path / "preds.csv"
    long_row = b"99," + b"x" * 300 + b"\n"
    write(log, HEADER, rows(*range(50)), long_row, rows(100))
    tailer = csv_tailer(tmp_path, chunk_bytes=64, max_line_bytes=1000)
    chunks = poll(tailer)
    assert all(len(c.data) <= 64 for c in chunks if c.data != long_row)
    assert lines_of(chunks) == [*rows(*range(50)).split(b"\n")[:-1], long_row[:-1], b"100,v100"]


def test_state_between_chunks_describes_exactly_what_was_yielded(tmp_path: Path) -> None:
    """A caller that stops after any chunk resumes from state() without loss or repeat."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(*range(40)))
    for stop_after in range(6):
        tailer = csv_tailer(tmp_path, chunk_bytes=50)
        seen: list[str] = []
        for n, chunk in enumerate(tailer.poll()):
            seen += ids_of([chunk])
            if n == stop_after:
                break
        tailer = restart(tailer, tmp_path, "preds.csv", fmt="csv", chunk_bytes=50)
        seen += ids_of(poll(tailer))
        assert seen == [str(i) for i in range(40)]
        tailer.close()


def test_state_is_plain_json(tmp_path: Path) -> None:
    """state() is made of dicts, lists, strings, ints, bools and None."""
    write(tmp_path / "preds.csv", HEADER, rows(1), b"2,")
    tailer = csv_tailer(tmp_path)
    poll(tailer)
    state = tailer.state()
    assert json.loads(json.dumps(state)) == state
    (entry,) = state["files"]
    assert bytes.fromhex(entry["fingerprint"]) == rows(1) + b"2,"
    assert bytes.fromhex(entry["header"]) == HEADER
    assert entry["offset"] == len(HEADER) + len(rows(1))
    assert entry["skipping"] is False


def test_invalid_state_is_refused(tmp_path: Path) -> None:
    """A state that is not what state() returned is an error, not a silent re-read."""
    with pytest.raises(ValueError, match="invalid tailer state"):
        csv_tailer(tmp_path, state={"files": [{"id": 1}]})


# --- rotation ----------------------------------------------------------------------------
def test_rotation_by_rename_and_create_reads_old_file_to_end(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    """The old file is read to its end, including lines a slow writer completes later."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1, 2))
    tailer = csv_tailer(tmp_path, on_event=lambda kind, msg: events.append((kind, msg)))
    assert ids_of(poll(tailer)) == ["1", "2"]
    write(log, rows(3), b"4,v")
    os.rename(log, tmp_path / "preds.csv.1")
    write(log, HEADER, rows("a1"))
    chunks = poll(tailer)
    assert ids_of(chunks) == ["3", "a1"]
    assert chunks[0].path == str(log)  # its last known name
    write(tmp_path / "preds.csv.1", b"4\n", rows(5))  # the slow writer finishes
    write(log, rows("a2"))
    assert ids_of(poll(tailer)) == ["4", "5", "a2"]
    assert poll(tailer) == []  # nothing new in the old file: it is let go
    assert len(tailer.state()["files"]) == 1
    assert tailer.stats().rotations == 1
    assert [kind for kind, _ in events].count("rotation") == 1


def test_copytruncate_recovers_rows_written_before_the_copy(tmp_path: Path) -> None:
    """Rows between our last read and the copy are read from the copy, once."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1, 2))
    tailer = csv_tailer(tmp_path)
    assert ids_of(poll(tailer)) == ["1", "2"]
    write(log, rows(3, 4))
    shutil.copyfile(log, tmp_path / "preds.csv.1")
    os.truncate(log, 0)
    write(log, rows(5))  # the writer goes on without a header
    chunks = poll(tailer)
    assert ids_of(chunks) == ["3", "4", "5"]
    assert {c.header for c in chunks} == {b"id,value"}
    assert chunks[0].path == str(tmp_path / "preds.csv.1")
    assert tailer.stats().rotations == 1
    write(log, rows(6))
    assert ids_of(poll(tailer)) == ["6"]
    assert poll(tailer) == []


def test_copytruncate_with_writer_past_old_offset_detected_by_fingerprint(tmp_path: Path) -> None:
    """After the truncate the file may already be longer than our offset: the start decides."""
    log, tailer = read_once(tmp_path, 1, 2)
    write(log, rows(3))
    shutil.copyfile(log, tmp_path / "preds.csv.1")
    os.truncate(log, 0)
    write(log, HEADER, rows(*range(100, 120)))
    assert log.stat().st_size > len(HEADER) + len(rows(1, 2, 3))
    assert ids_of(poll(tailer)) == ["3", *map(str, range(100, 120))]
    assert tailer.stats().rotations == 1


def test_truncation_restarts_at_zero(tmp_path: Path) -> None:
    """Without a copy, a truncated file is read again from its start; one rotation counted."""
    log = tmp_path / "preds.jsonl"
    write(log, b'{"id": 1}\n{"id": 2}\n')
    tailer = Tailer("preds.jsonl", fmt="jsonl", base_dir=tmp_path)
    poll(tailer)
    os.truncate(log, 0)
    write(log, b'{"id": 3}\n')
    assert lines_of(poll(tailer)) == [b'{"id": 3}']
    assert tailer.stats().rotations == 1
    os.truncate(log, 0)  # truncated again, then rewritten longer than before
    write(log, b'{"id": 4, "pad": "................"}\n{"id": 5}\n')
    assert lines_of(poll(tailer)) == [b'{"id": 4, "pad": "................"}', b'{"id": 5}']
    assert tailer.stats().rotations == 2


def test_csv_truncated_in_place_keeps_its_header_unless_the_writer_rewrites_it(
    tmp_path: Path,
) -> None:
    """After a truncation the first line is a header only if it equals the old header."""
    log, tailer = read_once(tmp_path, 1)
    os.truncate(log, 0)
    write(log, rows(2))
    (chunk,) = poll(tailer)
    assert (chunk.header, chunk.data) == (b"id,value", b"2,v2\n")
    os.truncate(log, 0)
    write(log, HEADER, rows(3))
    (chunk,) = poll(tailer)
    assert (chunk.header, chunk.data) == (b"id,value", b"3,v3\n")


def test_deleted_and_recreated_file_is_read_from_start(tmp_path: Path) -> None:
    """The deleted file is finished through its descriptor; the new one is read from 0."""
    log, tailer = read_once(tmp_path, 1)
    write(log, rows(2))
    log.unlink()
    write(log, HEADER, rows(1, 9))  # starts like the old file: not a copy of it all the same
    assert ids_of(poll(tailer)) == ["2", "1", "9"]
    assert poll(tailer) == []


def test_recreated_file_with_reused_inode_is_detected_by_fingerprint(tmp_path: Path) -> None:
    """Across a restart the same inode may hold new content: the fingerprint tells."""
    log, tailer = read_once(tmp_path, 1, 2)
    state = json.loads(json.dumps(tailer.state()))
    tailer.close()
    # What ext4 does when a deleted file's inode is reused: same (dev, inode), other bytes.
    os.truncate(log, 0)
    write(log, HEADER, rows(*range(10, 20)))
    tailer = csv_tailer(tmp_path, state=state)
    assert ids_of(poll(tailer)) == [str(i) for i in range(10, 20)]
    assert tailer.stats().rotations == 1


# --- globs ----------------------------------------------------------------------------------
def test_new_file_from_glob_is_followed(tmp_path: Path) -> None:
    """A file that starts matching the glob later is read from its start."""
    write(tmp_path / "preds-1.csv", HEADER, rows(1))
    tailer = csv_tailer(tmp_path, "preds-*.csv")
    assert ids_of(poll(tailer)) == ["1"]
    write(tmp_path / "preds-2.csv", HEADER, rows(2))
    write(tmp_path / "other.csv", HEADER, rows(3))
    assert ids_of(poll(tailer)) == ["2"]


def test_fresh_start_reads_existing_glob_files_oldest_first(tmp_path: Path) -> None:
    """Without a state every matched file is read from 0, by mtime then name."""
    for name, mtime in (("b.csv", 100), ("c.csv", 50), ("a.csv", 100)):
        write(tmp_path / name, HEADER, rows(name[0]))
        os.utime(tmp_path / name, ns=(mtime * 10**9, mtime * 10**9))
    assert ids_of(poll(csv_tailer(tmp_path, "*.csv"))) == ["c", "a", "b"]


def test_many_csv_files_with_identical_headers_are_distinct(tmp_path: Path) -> None:
    """Files that share their header are told apart by inode and data fingerprint."""
    for n in range(20):
        write(tmp_path / f"preds-{n:02}.csv", HEADER, rows(f"{n}-0"))
    tailer = csv_tailer(tmp_path, "preds-*.csv")
    assert sorted(ids_of(poll(tailer))) == sorted(f"{n}-0" for n in range(20))
    tailer = restart(tailer, tmp_path, "preds-*.csv", fmt="csv")
    for n in range(20):
        write(tmp_path / f"preds-{n:02}.csv", rows(f"{n}-1"))
    assert sorted(ids_of(poll(tailer))) == sorted(f"{n}-1" for n in range(20))


def test_glob_matching_the_copy_does_not_read_it_twice(tmp_path: Path) -> None:
    """A copy matched by the glob serves only copytruncate; it is never read on its own."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1))
    tailer = csv_tailer(tmp_path, "preds*.csv")
    poll(tailer)
    write(log, rows(2))
    shutil.copyfile(log, tmp_path / "preds.1.csv")  # logrotate is between copy and truncate
    assert ids_of(poll(tailer)) == ["2"]
    os.truncate(log, 0)
    write(log, rows(3))
    assert ids_of(poll(tailer)) == ["3"]
    # The next copytruncate, with rows written after our last read, copy and truncate at once.
    write(log, rows(4))
    os.rename(tmp_path / "preds.1.csv", tmp_path / "preds.2.csv")
    shutil.copyfile(log, tmp_path / "preds.1.csv")
    os.truncate(log, 0)
    write(log, rows(5))
    assert ids_of(poll(tailer)) == ["4", "5"]
    tailer = restart(tailer, tmp_path, "preds*.csv", fmt="csv")
    assert poll(tailer) == []
    assert tailer.stats().rotations == 2


def test_copy_that_grows_past_its_original_takes_over(tmp_path: Path) -> None:
    """Of two files with the same start, the larger one is followed, from the offset reached."""
    write(tmp_path / "a.csv", HEADER, rows(1))
    tailer = csv_tailer(tmp_path, "*.csv")
    poll(tailer)
    shutil.copyfile(tmp_path / "a.csv", tmp_path / "b.csv")
    assert poll(tailer) == []
    write(tmp_path / "b.csv", rows(2))  # the writer moved to the copy (cp + reopen)
    assert ids_of(poll(tailer)) == ["2"]
    write(tmp_path / "b.csv", rows(3))
    assert ids_of(poll(tailer)) == ["3"]


def test_file_leaving_the_glob_is_read_to_end_then_dropped(tmp_path: Path) -> None:
    """A file renamed out of the glob is finished through its descriptor, then let go."""
    write(tmp_path / "preds.csv", HEADER, rows(1))
    tailer = csv_tailer(tmp_path, "*.csv")
    poll(tailer)
    write(tmp_path / "preds.csv", rows(2))
    os.rename(tmp_path / "preds.csv", tmp_path / "preds.old")
    assert ids_of(poll(tailer)) == ["2"]
    assert poll(tailer) == []
    assert tailer.state()["files"] == []
    assert not tailer.stats().up


# --- restart --------------------------------------------------------------------------------
def test_restart_from_state_resumes_exactly(tmp_path: Path) -> None:
    """A restarted tailer continues at the recorded offsets, also for a rotated-away file."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1), b"2,")
    tailer = csv_tailer(tmp_path)
    assert ids_of(poll(tailer)) == ["1"]
    tailer = restart(tailer, tmp_path, "preds.csv", fmt="csv")
    write(log, b"v2\n", rows(3))
    assert ids_of(poll(tailer)) == ["2", "3"]

    # Killed, then the file is rotated before the restarted tailer looks at it.
    state = json.loads(json.dumps(tailer.state()))
    tailer.close()
    write(log, rows(4))
    os.rename(log, tmp_path / "preds.csv-20240601")
    write(log, HEADER, rows(5))
    tailer = csv_tailer(tmp_path, state=state)
    chunks = poll(tailer)
    assert ids_of(chunks) == ["4", "5"]
    assert chunks[0].path == str(tmp_path / "preds.csv-20240601")
    assert tailer.stats().rotations == 1

    # Killed between the rotation and reading the old file's tail.
    write(log, rows(6))
    os.rename(log, tmp_path / "preds.csv.1")
    write(log, HEADER, rows(7))
    write(tmp_path / "preds.csv.1", b"8,")
    it = tailer.poll()
    assert ids_of([next(it)]) == ["6"]
    tailer = restart(tailer, tmp_path, "preds.csv", fmt="csv")
    write(tmp_path / "preds.csv.1", b"v8\n")
    assert ids_of(poll(tailer)) == ["8", "7"]
    assert poll(tailer) == []
    assert tailer.stats().rotations == 2


def copytruncated_while_down(tmp_path: Path, copy: str) -> dict:
    """Row 1 is read and checkpointed; then, while the exporter is down, row 2 is written and
    the log is copied to `copy` and truncated. Returns the checkpointed state."""
    log, tailer = read_once(tmp_path, 1)
    state = json.loads(json.dumps(tailer.state()))
    tailer.close()
    write(log, rows(2))
    shutil.copyfile(log, tmp_path / copy)
    os.truncate(log, 0)
    return state


def test_restart_after_copytruncate_while_down(tmp_path: Path) -> None:
    """A copytruncate while the exporter was down is recovered from the copy."""
    state = copytruncated_while_down(tmp_path, "preds.csv.1")
    write(tmp_path / "preds.csv", rows(3, 4, 5))
    tailer = csv_tailer(tmp_path, state=state)
    assert ids_of(poll(tailer)) == ["2", "3", "4", "5"]


def test_restart_after_copytruncate_and_then_rename_while_down(tmp_path: Path) -> None:
    """Truncated in place, then renamed away: the copy and the file's new rows are both read."""
    state = copytruncated_while_down(tmp_path, "preds.csv.1.copy")
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(3))
    os.rename(log, tmp_path / "preds.csv.1")
    write(log, HEADER, rows(4))
    tailer = csv_tailer(tmp_path, state=state)
    assert ids_of(poll(tailer)) == ["2", "3", "4"]
    assert tailer.stats().rotations == 2  # the truncation and the rename


@pytest.mark.parametrize("globbed", [False, True], ids=["path", "glob"])
def test_inode_number_reused_while_down_is_not_taken_for_the_recorded_file(
    tmp_path: Path, globbed: bool
) -> None:
    """A recorded file deleted while we were down may lend its inode number to the next copy
    (ext4 does that): the copy still serves only the file it was copied from."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1, 2))
    source = "preds*.csv" if globbed else "preds.csv"
    tailer = csv_tailer(tmp_path, source)
    poll(tailer)
    state = json.loads(json.dumps(tailer.state()))
    tailer.close()
    write(log, rows(3))
    copy = tmp_path / ("preds.1.csv" if globbed else "preds.csv.1")
    shutil.copyfile(log, copy)
    os.truncate(log, 0)
    write(log, rows(4))
    # The state also knew an older rotated file, since deleted, whose inode the copy now has.
    reused = dict(state["files"][0], id=99, path=str(copy), ino=copy.stat().st_ino)
    reused.update(fingerprint=rows(0).hex(), offset=len(HEADER) + len(rows(0)))
    state["files"].append(reused)
    tailer = csv_tailer(tmp_path, source, state=state)
    assert ids_of(poll(tailer)) == ["3", "4"]
    assert poll(tailer) == []


def test_file_gone_while_down_is_reported_lost(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    """A recorded file found nowhere is reported; the file now under its name is read from 0."""
    log, tailer = read_once(tmp_path, 1)
    state = tailer.state()
    tailer.close()
    write(tmp_path / "new", HEADER, rows(2))  # created first: it cannot reuse the inode
    log.unlink()
    os.rename(tmp_path / "new", log)
    tailer = csv_tailer(tmp_path, state=state, on_event=lambda k, m: events.append((k, m)))
    assert ids_of(poll(tailer)) == ["2"]
    assert "lost" in [kind for kind, _ in events]


# --- too long lines ---------------------------------------------------------------------------
def test_too_long_line_is_skipped_and_counted(tmp_path: Path) -> None:
    """A line over max_line_bytes is skipped up to its newline and counted, even polls later."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1), b"2," + b"x" * 30 + b"\n", rows(3))
    tailer = csv_tailer(tmp_path, max_line_bytes=12)
    chunks = poll(tailer)
    assert ids_of(chunks) == ["1", "3"]
    assert sum(c.too_long for c in chunks) == 1

    write(log, b"4," + b"y" * 20)  # too long already, and no newline yet
    chunks = poll(tailer)
    assert lines_of(chunks) == []
    assert sum(c.too_long for c in chunks) == 0
    assert tailer.state()["files"][0]["skipping"] is True
    tailer = restart(tailer, tmp_path, "preds.csv", fmt="csv", max_line_bytes=12)
    write(log, b"y" * 20)
    assert sum(c.too_long for c in poll(tailer)) == 0
    write(log, b"yy\n", rows(5))
    chunks = poll(tailer)
    assert ids_of(chunks) == ["5"]
    assert sum(c.too_long for c in chunks) == 1


def test_line_of_exactly_max_line_bytes_is_kept() -> None:
    """max_line_bytes counts the bytes before the newline."""
    assert split_complete_lines(b"abcd\nabcde\nab", 4) == (b"abcd\n", 11, 1, False)
    assert split_complete_lines(b"abcd\nab", 4) == (b"abcd\n", 5, 0, False)
    assert split_complete_lines(b"abcde", 4) == (b"", 5, 0, True)
    block = b"a\n" * 10 + b"x" * 9 + b"\n" + b"b\n" + b"y" * 20
    assert split_complete_lines(block, 4) == (b"a\n" * 10 + b"b\n", len(block), 1, True)


def test_too_long_csv_header_is_skipped_and_the_next_line_is_the_header(tmp_path: Path) -> None:
    """A first line over max_line_bytes cannot be a header: it is counted, the next one is."""
    write(tmp_path / "preds.csv", b"h" * 40 + b"\n", HEADER, rows(1))
    chunks = poll(csv_tailer(tmp_path, max_line_bytes=12))
    assert sum(c.too_long for c in chunks) == 1
    assert ids_of(chunks) == ["1"]
    assert chunks[-1].header == b"id,value"


# --- health -------------------------------------------------------------------------------------
def test_missing_source_is_down_then_recovers(tmp_path: Path) -> None:
    """No file: up is False and poll() yields nothing; the file appears: it is read."""
    tailer = csv_tailer(tmp_path, "logs/preds.csv")
    assert poll(tailer) == []
    assert not tailer.stats().up
    (tmp_path / "logs").mkdir()
    write(tmp_path / "logs" / "preds.csv", HEADER, rows(1))
    assert ids_of(poll(tailer)) == ["1"]
    assert tailer.stats().up
    (tmp_path / "logs" / "preds.csv").unlink()
    poll(tailer)
    assert not tailer.stats().up
    glob_tailer = csv_tailer(tmp_path, "nowhere/*.csv")
    assert poll(glob_tailer) == []
    assert not glob_tailer.stats().up


def test_unreadable_source_is_down_then_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str]]
) -> None:
    """A file we may not read counts as down, once reported, without an exception."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1))
    real_open = os.open

    def deny(path: str, *args: object, **kwargs: object) -> int:
        if str(path) == str(log):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)  # chmod 0 does not stop root
    tailer = csv_tailer(tmp_path, on_event=lambda kind, msg: events.append((kind, msg)))
    assert poll(tailer) == []
    assert poll(tailer) == []
    assert not tailer.stats().up
    assert [kind for kind, _ in events] == ["unreadable"]
    monkeypatch.setattr(os, "open", real_open)
    assert ids_of(poll(tailer)) == ["1"]
    assert tailer.stats().up


def test_lag_bytes(tmp_path: Path) -> None:
    """lag_bytes is what was written but not consumed yet, over the followed files."""
    log = tmp_path / "preds.csv"
    write(log, HEADER, rows(1), b"2,v")
    tailer = csv_tailer(tmp_path, "*.csv")
    poll(tailer)
    assert tailer.stats().lag_bytes == 3
    write(log, b"2\n")
    write(tmp_path / "b.csv", HEADER)
    poll(tailer)
    write(tmp_path / "b.csv", rows(7))
    assert tailer.stats().lag_bytes == len(rows(7))
    poll(tailer)
    assert tailer.stats().lag_bytes == 0

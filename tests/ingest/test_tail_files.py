"""The identity rules of exporter.ingest.tail_files on their own: fingerprints, copies, stats."""

from __future__ import annotations

import os
from pathlib import Path

from exporter.ingest.tail_files import (
    FINGERPRINT_BYTES,
    FingerprintIndex,
    TailedFile,
    compatible,
    fp_key,
    may_have_changed,
    stamp,
    untouched,
)


def test_a_fingerprint_is_keyed_by_its_first_line_or_its_full_length() -> None:
    assert fp_key(b"1,a\n2,b\n") == b"1,a\n"
    assert fp_key(b"x" * FINGERPRINT_BYTES + b"\n") == b"x" * FINGERPRINT_BYTES
    assert fp_key(b"1,a") is None  # too short to tell: compared with every file


def test_compatible_compares_the_common_length_after_the_header() -> None:
    assert compatible(b"h\n1,a\n2", b"h\n", b"1,a\n2,b\n")  # a prefix of the fingerprint
    assert compatible(b"h\n1,a\n2,b\n3", b"h\n", b"1,a\n")  # the fingerprint is a prefix
    assert not compatible(b"h\n1,b\n", b"h\n", b"1,a\n")
    assert not compatible(b"g\n1,a\n", b"h\n", b"1,a\n")  # another header
    assert not compatible(b"h\n", b"h\n", b"1,a\n")  # no data to compare
    assert not compatible(b"h\n1,a\n", b"h\n", b"")  # no fingerprint yet


def test_a_file_may_have_changed_unless_its_name_has_the_stat_it_was_read_to(
    tmp_path: Path,
) -> None:
    log = tmp_path / "preds.csv"
    log.write_bytes(b"1,a\n")
    st = os.stat(log)
    f = TailedFile(1, str(log), st.st_dev, st.st_ino, fd=3)
    assert may_have_changed(f, st)  # never read to its end
    f.stamp = stamp(st)
    assert not may_have_changed(f, st)
    assert may_have_changed(f, None)  # open, and its name gone
    f.current = False
    assert may_have_changed(f, st)  # rotated away: read until it stops growing
    f.fd, f.current = None, True
    assert not may_have_changed(f, st)  # neither open nor parked: not followed
    f.parked = True
    assert not may_have_changed(f, st)
    assert not may_have_changed(f, None)  # parked, and not found under a matched name


def test_restart_keeps_identity_and_detached_keeps_the_content() -> None:
    f = TailedFile(7, "p", 1, 2, fp=b"1,a\n", header=b"h\n", data_start=2, offset=6)
    f.stamp, f.seen_size = (6, 1, 1), 6
    old = f.detached()
    f.restart(b"h\n")
    assert (f.key, f.offset, f.data_start, f.fp, f.header) == ((1, 2), 0, 0, b"", None)
    assert (f.prev_header, f.stamp, f.seen_size) == (b"h\n", None, -1)
    assert untouched(f)
    assert (old.rid, old.offset, old.fp, old.header, old.fd, old.ikey) == (
        7,
        6,
        b"1,a\n",
        b"h\n",
        None,
        None,
    )


def test_the_index_offers_the_files_a_new_start_may_be_a_copy_of(tmp_path: Path) -> None:
    index = FingerprintIndex()
    a = TailedFile(1, "a", 1, 1, fp=b"1,a\n2,b\n", header=b"h\n", data_start=2)
    b = TailedFile(2, "b", 1, 2, fp=b"9,z\n", header=b"h\n", data_start=2)
    for f in (b, a):
        index.add(f)
    new = tmp_path / "new.csv"
    new.write_bytes(b"h\n1,a\n")
    fd = os.open(new, os.O_RDONLY)
    try:
        probe = TailedFile(3, str(new), 1, 3, fd=fd)
        assert index.candidates(probe, [a, b]) == [a]
        index.remove(a)
        assert index.candidates(probe, [a, b]) == []
    finally:
        os.close(fd)

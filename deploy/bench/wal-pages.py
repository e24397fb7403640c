#!/usr/bin/env python3
"""The pages SQLite wrote for each document, by table and index, read from the write-ahead log.

    ./deploy/bench/wal-pages.py DIR/bench.db [EARLIER/bench.db]

DIR/bench.db and DIR/bench.db-wal are a copy of a bus's store taken while the bus ran with
checkpoints off (`store.checkpoint_ms` longer than the run, so the log holds every page written
since the bus started): `load.sh` makes one with `WAL_PAGES=DIR`. Every commit writes each page
it changed, whole, to the log (a frame), and a checkpoint later copies the frames back into the
database; so the frames per document are the bytes each document costs the disk twice, and the
system calls and checksums that go with them.

With EARLIER, a copy of the same store taken before (same log, fewer frames), only what was
written between the two copies is counted: the frames after the earlier log's last, for the
documents stored in between.

Each frame's page is named after the table or index that owns it at the end of the log (SQLite's
`dbstat`; a page freed and taken by another table meanwhile counts for its last owner). Prints
the frames and commits per document, then the frames per document of each table and index and of
each kind of page (leaf, interior, overflow).
"""

import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile


def frames(wal):
    """The page size, and (page number, whether the frame ends a commit) for each frame of the log."""
    size = os.path.getsize(wal)
    with open(wal, "rb") as f:
        header = f.read(32)
        if len(header) < 32:
            return 0, []
        magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(">IIIIIIII", header)
        if magic not in (0x377F0682, 0x377F0683):
            sys.exit(f"{wal}: not a SQLite write-ahead log")
        out = []
        at = 32
        # Only the frames' headers are read: the log can be gigabytes.
        while at + 24 + page_size <= size:
            f.seek(at)
            page, db_size, s1, s2 = struct.unpack(">IIII", f.read(16))
            if (s1, s2) != (salt1, salt2):
                break  # frames of an earlier log, left behind a restart
            out.append((page, db_size != 0))
            at += 24 + page_size
    return page_size, out


def opened(db, read):
    """`read` of a connection to a copy of `db` and its log: opening may write (the log's index)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(db, tmp)
        shutil.copy(db + "-wal", tmp)
        conn = sqlite3.connect(os.path.join(tmp, os.path.basename(db)))
        try:
            return read(conn)
        finally:
            conn.close()


def count_documents(conn):
    return conn.execute("SELECT count(*) FROM documents").fetchone()[0]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    db = sys.argv[1]
    page_size, written = frames(db + "-wal")
    owner, documents = opened(
        db,
        lambda conn: (
            {page: (name, kind) for name, page, kind in conn.execute("SELECT name, pageno, pagetype FROM dbstat")},
            count_documents(conn),
        ),
    )
    if len(sys.argv) == 3:
        earlier = sys.argv[2]
        _, before = frames(earlier + "-wal")
        if before != written[: len(before)]:
            sys.exit(f"{earlier}: not an earlier copy of the same log as {db}")
        written = written[len(before) :]
        documents -= opened(earlier, count_documents)
    if not written or not documents:
        sys.exit(f"{db}: no frames in the log, or no documents")
    commits = sum(1 for _, commit in written if commit)
    by_tree = collections.Counter()
    by_kind = collections.Counter()
    for page, _ in written:
        name, kind = owner.get(page, ("(free at the end)", "-"))
        by_tree[name] += 1
        by_kind[(name, kind)] += 1
    n = len(written)
    print(
        f"{documents} documents: {n} frames of {page_size} B, {commits} commits; per document "
        f"{n / documents:.1f} frames ({n * (page_size + 24) / documents / 1024:.1f} KiB), "
        f"{commits / documents:.2f} commits, {n / max(commits, 1):.1f} frames per commit"
    )
    print(f"{'table or index':34} {'frames/doc':>10} {'share':>7}")
    for name, k in by_tree.most_common():
        print(f"{name:34} {k / documents:10.2f} {100 * k / n:6.1f}%")
    print(f"{'by kind of page':34} {'frames/doc':>10}")
    for (name, kind), k in by_kind.most_common(12):
        print(f"{name + ' (' + kind + ')':34} {k / documents:10.2f}")


if __name__ == "__main__":
    main()

"""``os.scandir`` as a journal holds it: each entry's name, path, inode and kind, and an object
that answers as a ``DirEntry`` does. ``stat()`` of an entry asks ``os.stat`` (journaled itself)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

__all__ = ["encode_scandir", "decode_scandir"]


def encode_scandir(found: Any) -> list[list[Any]]:
    with found:
        return [[e.name, e.path, e.inode(), e.is_dir(), e.is_dir(follow_symlinks=False),
                 e.is_file(), e.is_file(follow_symlinks=False), e.is_symlink()] for e in found]


def decode_scandir(rows: list[list[Any]]) -> _Entries:
    return _Entries([_Entry(*row) for row in rows])


class _Entry:
    """A directory entry as it was when recorded."""

    def __init__(self, name: str, path: str, inode: int, is_dir: bool, is_dir_here: bool,
                 is_file: bool, is_file_here: bool, is_symlink: bool) -> None:
        self.name, self.path, self._inode = name, path, inode
        self._kinds = (is_dir, is_dir_here, is_file, is_file_here, is_symlink)

    def inode(self) -> int:
        return self._inode

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._kinds[0] if follow_symlinks else self._kinds[1]

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._kinds[2] if follow_symlinks else self._kinds[3]

    def is_symlink(self) -> bool:
        return self._kinds[4]

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return os.stat(self.path) if follow_symlinks else os.lstat(self.path)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"


class _Entries:
    """What ``os.scandir`` returns: an iterator that is also a context manager."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._entries = iter(entries)

    def __iter__(self) -> Iterator[_Entry]:
        return self._entries

    def __next__(self) -> _Entry:
        return next(self._entries)

    def __enter__(self) -> _Entries:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._entries = iter(())

"""Write output files atomically: nothing ever appears under the final name half-written.

    with atomic_path('out/spectrum.png') as tmp:
        write_png(tmp)            # any exception, Ctrl-C included, removes tmp

`atomic_files` does the same for files that belong together (all appear, or none);
`PendingFile` is for writers that live longer than one block (a video recorded frame
by frame in the GUI): `commit()` renames, `discard()` deletes.
The temporary file sits in the destination folder (so the rename is atomic on the
same file system) and keeps the extension, so writers that pick a format from the
name (imageio, ffmpeg, matplotlib) still do.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator, Sequence, Union


class PendingFile:
    """A temporary file `.NAME.XXXX.partial.EXT` beside `path`, renamed to `path` on commit()."""

    def __init__(self, path: Union[str, os.PathLike], make_dirs: bool = True):
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        if make_dirs:
            os.makedirs(folder, exist_ok=True)
        stem, ext = os.path.splitext(os.path.basename(self.path))
        fd, self.tmp = tempfile.mkstemp(dir=folder, prefix=f'.{stem}.', suffix=f'.partial{ext}')
        os.close(fd)
        self.done = False

    def commit(self) -> str:
        os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions.
        os.replace(self.tmp, self.path)
        self.done = True
        return self.path

    def discard(self) -> None:
        if not self.done:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.tmp)
            self.done = True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Union[str, os.PathLike], make_dirs: bool = True) -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds."""
    pending = PendingFile(path, make_dirs)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()


@contextlib.contextmanager
def atomic_files(paths: Sequence[Union[str, os.PathLike]], make_dirs: bool = True) -> Iterator[list[str]]:
    """Yield temporary paths beside each of `paths`; rename them all into place only if the block succeeds.

    Files that belong together (a PNG and its raw arrays) either all appear or none does.
    """
    pending = []
    try:
        for path in paths:
            pending.append(PendingFile(path, make_dirs))
        yield [file.tmp for file in pending]
        for file in pending:
            file.commit()
    finally:
        for file in pending:
            file.discard()

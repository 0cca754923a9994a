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
import errno
import os
import stat
import tempfile
from typing import Iterator, Sequence, Union


class PendingFile:
    """A temporary file `.NAME.XXXX.partial.EXT` beside `path`, renamed to `path` on commit().

    `path` may be a symbolic link: the file it points to is replaced and the link kept. When the
    target exists and is not a regular file (a device such as /dev/null or /dev/stdout, a FIFO), it is
    written in place and never replaced or removed. Errors name `path`, not the temporary file.
    """

    def __init__(self, path: Union[str, os.PathLike], make_dirs: bool = True):
        self.path = os.fspath(path)
        self.done = False
        try:
            mode = os.stat(self.path).st_mode   # Follows links, also /proc/self/fd/N to a pipe.
        except OSError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, 'is a folder, not a file', self.path)
        self.in_place = mode is not None and not stat.S_ISREG(mode)
        if self.in_place:              # Written through the name given: a device, FIFO or stream.
            self.tmp = self.path
            return
        target = os.path.realpath(self.path)
        folder = os.path.dirname(target)
        stem, ext = os.path.splitext(os.path.basename(target))
        try:
            if make_dirs:
                os.makedirs(folder, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=folder, prefix=f'.{stem[:80]}.', suffix=f'.partial{ext}')
        except OSError as e:
            raise OSError(e.errno, f'cannot write there ({e.strerror})', self.path) from None
        os.close(fd)
        self._target = target

    def commit(self) -> str:
        if not self.in_place:
            os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions.
            os.replace(self.tmp, self._target)
        self.done = True
        return self.path

    def discard(self) -> None:
        if not self.done and not self.in_place:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.tmp)
        self.done = True


def check_writable(paths: Sequence[Union[str, os.PathLike]]) -> None:
    """Raise the OSError that writing `paths` would meet, now (before minutes of work), naming the path.

    Leaves nothing behind: folders made to try are removed again (the real write makes them)."""
    for path in paths:
        missing = []                     # Folders that do not exist yet, deepest first.
        folder = os.path.dirname(os.path.realpath(os.fspath(path)))
        while folder and not os.path.exists(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        try:
            PendingFile(path).discard()
        finally:
            for made in missing:
                try:
                    os.rmdir(made)
                except OSError:
                    break


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _naming_user_paths(pending: Sequence[PendingFile]) -> Iterator[None]:
    """An OSError about a temporary file is re-raised about the path the user gave."""
    try:
        yield
    except OSError as e:
        for file in pending:
            if e.filename is not None and os.fspath(e.filename) == file.tmp and file.tmp != file.path:
                raise OSError(e.errno, e.strerror, file.path) from e
        raise


@contextlib.contextmanager
def atomic_path(path: Union[str, os.PathLike], make_dirs: bool = True) -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds."""
    pending = PendingFile(path, make_dirs)
    try:
        with _naming_user_paths([pending]):
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
        with _naming_user_paths(pending):
            yield [file.tmp for file in pending]
            for file in pending:
                file.commit()
    finally:
        for file in pending:
            file.discard()

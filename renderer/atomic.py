"""Write output files atomically: nothing ever appears under the final name half-written.

    with atomic_path('out/video.mp4') as tmp:
        write_video(tmp)          # any exception, Ctrl-C included, removes tmp

The temporary file sits in the destination folder (so the final rename is atomic on
the same file system) and keeps the extension, so writers that pick a format from the
name (imageio, matplotlib) still do.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator, Union


@contextlib.contextmanager
def atomic_path(path: Union[str, os.PathLike], make_dirs: bool = True) -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_dirs:
        os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{stem}.', suffix=f'.partial{ext}')
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise

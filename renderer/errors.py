"""Exceptions of network loading (importable without torch).

Every failure to turn a file or URL into a generator raises `NetworkLoadError`
(a `ValueError`) whose message starts with the file path or URL and names the
problem: missing or unreadable file, download failure, unsafe pickle, malformed
or truncated data, a network that does not match the architecture its
arguments describe.
"""

from __future__ import annotations


class NetworkLoadError(ValueError):
    """A network file or URL could not be loaded; the message names the source and the problem."""


class UnsafePickleError(NetworkLoadError):
    """The pickle refers to a global outside the allow-list: loading it could run code from the file."""

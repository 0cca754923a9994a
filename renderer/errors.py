"""The error types that reach the user (importable without torch).

- `RequestError` (a `ValueError`): a request that cannot be honoured as asked (a
  bad value, an option the network does not support, a transform on a network
  without an input transform). Its message is written for the user and is shown
  as it is: by the commands as `error: ...` with exit status 2, by the renderer
  as the result's error text.
- `NetworkLoadError` (a `RequestError`): a file or URL could not be turned into a
  generator. The message starts with the file path or URL and names the problem:
  missing or unreadable file, download failure, unsafe pickle, malformed or
  truncated data, a network that does not match the architecture its arguments
  describe.
- `UnsafePickleError` (a `NetworkLoadError`): the pickle names a global outside
  the allow-list, so loading it could run code from the file.

Library code raises these for anything a user can get wrong; other exceptions
mean a bug (or a failing device) and are reported with their type.
"""

from __future__ import annotations


class RequestError(ValueError):
    """A request that cannot be honoured; the message says why, in words meant for the user."""


class NetworkLoadError(RequestError):
    """A network file or URL could not be loaded; the message names the source and the problem."""


class UnsafePickleError(NetworkLoadError):
    """The pickle refers to a global outside the allow-list: loading it could run code from the file."""

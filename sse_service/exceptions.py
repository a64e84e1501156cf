"""Why a stream was not opened."""

from __future__ import annotations


class Refused(Exception):
    """A request for a stream is answered with `status` and the one-line `message` as its body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

"""Failures talking to the household's backend, by what the user has to do about them."""

from __future__ import annotations


class BackendError(Exception):
    """Base class; ``str()`` is a one-line explanation for the log."""


class CannotConnect(BackendError):
    """Nothing answers at the URL, or the request timed out: start the backend."""


class UnexpectedAnswer(CannotConnect):
    """Something answered, but not like a Hearth backend: check the URL."""


class InvalidAuth(BackendError):
    """The backend refused the token (401): get the current one with `mpc-backend token`."""


class NotInFederation(BackendError):
    """The backend runs but has not created or joined a federation yet."""


class BackendRejected(BackendError):
    """The backend understood the request and refused it (4xx/5xx with an error body)."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None
    ) -> None:
        super().__init__(f"backend refused ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field  # the request field the backend blames, if it names one

"""What the edge's service layer raises when it cannot serve a request; HTTP maps each one
to a status and an error type in one place (edge/http/errors.py)."""

from __future__ import annotations


class EdgeError(Exception):
    """A request the edge cannot serve; `message` is safe to show the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotReady(EdgeError):
    """No index is loaded yet."""


class NotFound(EdgeError):
    """The movie (or file) asked for does not exist."""


class NoCandidates(EdgeError):
    """No movie in the catalog passes the request's filters."""


class UnresolvedTitles(EdgeError):
    """None of the liked titles is in the catalog, and there is no query to go on."""


class NothingToGoOn(EdgeError):
    """The request names neither a liked movie nor a query."""

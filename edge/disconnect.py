"""Stop work nobody is waiting for: cancel a handler's coroutine when its client disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from litestar import Request

from edge.service import ApiError

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it (closing any upstream stream, which
    tells the model server to stop generating) and raise a 499-style ApiError nobody will read."""
    task = asyncio.ensure_future(work)
    receive = request.receive

    async def disconnected() -> None:
        # The body has been read, so the next ASGI message can only be the disconnect.
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            # Let the cancelled work unwind now (its upstream stream closes on the way out).
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise ApiError(499, "client_closed_request", "the client closed the request")
    return task.result()

"""Cancel a request's work when its HTTP client hangs up (for any ASGI server tier).

Litestar notices a disconnect only while it streams a response; a handler that waits for a
whole answer (a queued request, a non-streamed generation) would otherwise keep the model busy
until the answer ends, for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


@contextlib.asynccontextmanager
async def cancel_on_disconnect(receive: Callable[[], Awaitable[Any]]) -> AsyncIterator[None]:
    """Run the block; if the client disconnects meanwhile, cancel it and raise ClientGone.

    Enter it after the request body is read, so the next ASGI message can only be the disconnect.
    """
    task = asyncio.current_task()
    assert task is not None
    hung_up = False

    async def watch() -> None:
        nonlocal hung_up
        while (await receive())["type"] != "http.disconnect":
            pass
        hung_up = True
        task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        yield
    except asyncio.CancelledError:
        if not hung_up:
            raise
        task.uncancel()
        raise ClientGone() from None
    finally:
        watcher.cancel()

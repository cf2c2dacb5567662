"""Slots, a bounded queue, deadlines and cancellation between the HTTP layer and the engines.

Each slot is one engine instance (its own KV cache) driven by its own worker thread; engines
release the GIL while they compute, so the event loop keeps serving. A request takes a free slot
(the one whose cache shares the longest prefix with its prompt), or waits in a queue of bounded
depth; a full queue is refused at once. Tokens travel from the worker thread to the request's
asyncio queue. Cancelling (client gone, deadline, stop sequence) sets an event the engine checks
between tokens; the slot is handed on as soon as the worker returns.

An answer written in several requests (the edge asks for one reason per pick) may name itself
(`Hold`): when such a request ends and more of the answer follow, its slot is kept for the
answer's next request for up to `hold_s` instead of going to a newcomer, so a full server turns
new answers away at their first request rather than breaking answers it has half written.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from model_server.engines.base import Cancelled, Engine, GenerationStats, common_prefix
from model_server.metrics import Metrics
from model_server.sampling import SamplingOptions

log = logging.getLogger("model_server.scheduler")

_TOKEN, _DONE, _CANCELLED, _ERROR, _DEADLINE = range(5)


class QueueFull(Exception):
    """Every slot is busy and the queue is at its limit."""

    def __init__(self, retry_after: int):
        super().__init__(f"queue full; retry after {retry_after} s")
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """The request's deadline passed while it waited or generated."""


class GenerationFailed(Exception):
    """The engine raised; the message is safe to log, not to send."""


@dataclass(frozen=True)
class Hold:
    """The answer a request belongs to, and whether more of its requests follow."""

    answer: str
    more: bool


class Generation:
    """One running generation as the HTTP layer sees it: an async stream of token ids."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float):
        self.cancel = threading.Event()
        self.stats = GenerationStats()
        self.cancel_reason = ""
        self.first_token_at: float | None = None  # loop time
        self._loop = loop
        self._queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
        self._deadline_handle = loop.call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self.abort("deadline")
        self._queue.put_nowait((_DEADLINE, None))

    def push(self, kind: int, value: object = None) -> None:
        """Called from the worker thread."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))

    def abort(self, reason: str) -> None:
        """Ask the engine to stop before its next token."""
        if not self.cancel.is_set():
            self.cancel_reason = reason
            self.cancel.set()

    async def tokens(self) -> AsyncIterator[int]:
        """Generated token ids; raises DeadlineExceeded or GenerationFailed."""
        try:
            while True:
                kind, value = await self._queue.get()
                if kind == _TOKEN:
                    if self.first_token_at is None:
                        self.first_token_at = self._loop.time()
                    yield value  # type: ignore[misc]
                elif kind in (_DONE, _CANCELLED):
                    return
                elif kind == _DEADLINE:
                    raise DeadlineExceeded()
                else:
                    raise GenerationFailed(str(value))
        finally:
            self._deadline_handle.cancel()


class Scheduler:
    """Hands engines (slots) to requests; at most `queue_limit` requests wait."""

    def __init__(
        self,
        engines: Sequence[Engine],
        queue_limit: int,
        metrics: Metrics,
        hold_s: float = 0.0,
    ):
        if not engines:
            raise ValueError("at least one engine")
        self._engines = list(engines)
        self._free: list[Engine] = list(engines)
        self._waiters: collections.deque[asyncio.Future[Engine]] = collections.deque()
        self._queue_limit = queue_limit
        self._metrics = metrics
        self._pool = ThreadPoolExecutor(max_workers=len(engines), thread_name_prefix="slot")
        self._avg_job_s = 5.0
        self._active: set[Generation] = set()
        self._closed = False
        # Slots kept for an answer's next request: answer -> (engine, expiry timer).
        self._hold_s = hold_s
        self._held: dict[str, tuple[Engine, asyncio.TimerHandle]] = {}
        # Answers generating now, and those among them said to be done meanwhile (their slot
        # is not kept when the generation returns).
        self._running: dict[str, asyncio.Event] = {}
        self._ended: set[str] = set()
        metrics.slots_total.set(len(engines))
        self._update_gauges()

    @property
    def busy(self) -> int:
        """Slots generating now."""
        return len(self._engines) - len(self._free)

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return sum(1 for w in self._waiters if not w.done())

    def _update_gauges(self) -> None:
        self._metrics.slots_busy.set(self.busy)
        self._metrics.queue_depth.set(self.waiting)

    def full(self, answer: str | None = None) -> bool:
        """Whether a request (of `answer`) would be refused now: no slot kept for its answer,
        none free, and the queue at its limit. A hint for refusing before any work; `start`
        decides."""
        if answer is not None and (answer in self._held or answer in self._running):
            return False
        if self._free and not self.waiting:
            return False
        return self.waiting >= self._queue_limit

    def retry_after(self) -> int:
        """Seconds until a slot is likely free for one more request (a rough estimate)."""
        est = self._avg_job_s * (self.waiting + 1) / len(self._engines)
        return max(1, min(60, math.ceil(est)))

    async def start(
        self,
        prompt_ids: Sequence[int],
        opts: SamplingOptions,
        deadline: float,
        hold: Hold | None = None,
    ) -> Generation:
        """Take a slot (the one kept for `hold`'s answer, else a free one, waiting until
        `deadline`, loop time) and start generating."""
        loop = asyncio.get_running_loop()
        if hold is not None and hold.answer in self._running:
            # The answer's previous request is still winding down: its reply is out, but the
            # worker has not handed the slot back yet. Its slot is this request's.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._running[hold.answer].wait()
        engine = self._take_held(hold) or await self._acquire(prompt_ids, deadline)
        gen = Generation(loop, deadline)
        self._active.add(gen)
        running = asyncio.Event()
        if hold is not None:
            self._running[hold.answer] = running
        fut = loop.run_in_executor(self._pool, self._run, engine, list(prompt_ids), opts, gen)

        def finished(_: object) -> None:
            self._active.discard(gen)
            ended = False
            if hold is not None:
                ended = hold.answer in self._ended
                self._ended.discard(hold.answer)
            # Kept however the request ended (a stop string or the client closing the stream
            # also count as cancelling): the answer's next request comes, or it says it is
            # done, or `hold_s` runs out.
            if hold is not None and hold.more and self._hold_s > 0 and not ended:
                self._keep(engine, hold.answer)
            else:
                self._release(engine)
            if hold is not None and self._running.get(hold.answer) is running:
                del self._running[hold.answer]
            running.set()

        fut.add_done_callback(finished)
        return gen

    def _take_held(self, hold: Hold | None) -> Engine | None:
        """The slot kept for `hold`'s answer, if it still is."""
        if hold is None or hold.answer not in self._held:
            return None
        engine, timer = self._held.pop(hold.answer)
        timer.cancel()
        return engine

    def _keep(self, engine: Engine, answer: str) -> None:
        """Keep `engine` for `answer`'s next request, for `hold_s` at most."""
        if self._closed:
            self._release(engine)
            return
        previous = self._held.pop(answer, None)
        if previous is not None:  # not expected (one request at a time per answer); be safe
            previous[1].cancel()
            self._release(previous[0])
        timer = asyncio.get_running_loop().call_later(self._hold_s, self.release_hold, answer)
        self._held[answer] = (engine, timer)

    def release_hold(self, answer: str) -> bool:
        """Hand on the slot kept for `answer` (its answer is done, or it did not come back in
        time); False when none is kept."""
        held = self._held.pop(answer, None)
        if held is None:
            if answer in self._running:  # said while its last request still winds down
                self._ended.add(answer)
            return False
        held[1].cancel()
        self._release(held[0])
        return True

    async def _acquire(self, prompt_ids: Sequence[int], deadline: float) -> Engine:
        if self._free and not self.waiting:
            engine = max(self._free, key=lambda e: common_prefix(e.cached_tokens, prompt_ids))
            self._free.remove(engine)
            self._update_gauges()
            return engine
        if self.waiting >= self._queue_limit:
            raise QueueFull(self.retry_after())
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Engine] = loop.create_future()
        self._waiters.append(waiter)
        self._update_gauges()
        try:
            timeout = max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait({waiter}, timeout=timeout)
            if not done:
                raise DeadlineExceeded()
            return waiter.result()
        except BaseException:
            # Timed out or the client went away: give back a slot handed over meanwhile.
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())
            else:
                waiter.cancel()
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            self._update_gauges()

    def _release(self, engine: Engine) -> None:
        if self._closed:
            engine.close()  # its generation ran on past close(); nothing else uses it now
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(engine)
                self._update_gauges()
                return
        self._free.append(engine)
        self._update_gauges()

    def _run(
        self, engine: Engine, prompt_ids: list[int], opts: SamplingOptions, gen: Generation
    ) -> None:
        """Worker thread: drive the engine, forward tokens, record speed."""
        started = time.perf_counter()
        first = last = None
        cancelled = False
        try:
            for token in engine.generate(prompt_ids, opts, gen.cancel, gen.stats):
                last = time.perf_counter()
                if first is None:
                    first = last
                gen.push(_TOKEN, token)
            gen.push(_DONE)
        except Cancelled:
            cancelled = True
            gen.push(_CANCELLED)
        except Exception as exc:
            log.exception("generation failed on %s", engine.name)
            gen.push(_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            m = self._metrics
            m.prompt_tokens.inc(gen.stats.prompt_tokens)
            m.cached_prompt_tokens.inc(gen.stats.cached_tokens)
            m.completion_tokens.inc(gen.stats.generated)
            if first is not None and last is not None and gen.stats.generated > 1 and last > first:
                m.decode_rate.observe((gen.stats.generated - 1) / (last - first))
            if cancelled:
                m.cancelled.labels(reason=gen.cancel_reason or "unknown").inc()
            elapsed = time.perf_counter() - started
            self._avg_job_s = 0.8 * self._avg_job_s + 0.2 * elapsed

    def close(self) -> None:
        """Cancel running generations (they stop within a token), stop the worker threads and
        close the engines: idle ones now, busy ones as soon as their generation returns (never
        under a running generation: freeing a native model mid-call would crash)."""
        self._closed = True
        for gen in list(self._active):
            gen.abort("shutdown")
        for engine, timer in self._held.values():
            timer.cancel()
            engine.close()
        self._held.clear()
        for engine in self._free:
            engine.close()
        self._free.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

"""`python -m edge`: serve the edge API and web page (settings: MOVIEMIND_EDGE_*)."""

from __future__ import annotations

import logging
import os
import sys

# The edge's numeric work per request is a few small matrix-vector products: BLAS threads only
# add hand-offs (measured in benchmarks/ranking_bench.py on a busy 2-core machine: 33 ms p50 with
# OpenBLAS's 2 threads, 3 ms with 1). Set before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    from edge.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import uvicorn

    from edge.app import create_app

    app = create_app(settings)
    print(
        f"moviemind edge on http://{settings.host}:{settings.port}/ (index {settings.index}, upstreams {', '.join(settings.upstream.urls)})",
        flush=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )


if __name__ == "__main__":
    main()

"""Development tooling shared by the tests, benchmarks, load tests and `make demo`; never deployed.

    process     one server subprocess: free loopback port, own process group, log file, readiness
    servers     the model server and the edge with the settings tests and benchmarks start them with
    foreground  `make demo`: both servers in the terminal until Ctrl-C or SIGTERM
    machine     CPU model and flags, cores, load average, Python; per-process CPU time and memory
    stats       percentiles and a latency summary
    sse         a client-side decoder of text/event-stream bodies (`event:` + `data:` blocks)
    report      benchmark reports: one JSON document, Markdown rendered from it

It imports no tier (edge, model_server, index_builder): it starts them as `python -m` processes.
"""

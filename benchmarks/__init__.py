"""Benchmarks run by `make bench` (scripts/bench.sh runs every `benchmarks/*_bench.py`).

Each writes docs/benchmarks/<name>.json and renders <name>.md from it with devstack.report; the
shared pieces, so a new benchmark has no helper of its own for them:

    from devstack.report import BenchReport, Heading, Table, blocks, write_report
    from devstack.servers import start_edge, start_model_server  # loopback, process groups, logs
    from devstack.sse import sse_events  # (event, data) from a streamed response's bytes
    from devstack.stats import latency_summary, percentile

    report = BenchReport.begin("reasons", "Reasons benchmark", "python -m benchmarks.reasons_bench")
    with start_model_server(log_dir) as model, start_edge(log_dir, [model.url]) as edge:
        ms = [...]  # measure against edge.url
    report.finish(
        results={"first_token_ms": latency_summary(ms)},  # raw numbers, for programs
        blocks=blocks("Intro.", "", Table(["", "p50 ms"], [["edge", percentile(ms, 50)]])),
    )
    write_report(report, args.out_dir)  # <name>.json, then <name>.md rendered from it

`BenchReport.begin` records the CPU (model; avx, avx2, avx512f, fma, f16c present or not), the
cores, the Python version and the load average; `finish` the load average at the end.
"""

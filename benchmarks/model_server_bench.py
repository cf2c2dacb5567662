"""Model server benchmark: `python -m benchmarks.model_server_bench` (part of `make bench`).

Side by side, one run, the same GGUF (the embedded SmolLM2-135M-Instruct Q4_1), the same prompt,
greedy decoding, 2 threads:
- each engine in-process through its own native generation loop (the ceiling), its runs
  alternating with this server's runs of the same engine over HTTP (SSE), so the ratio the
  target is about sees the same machine conditions on both sides,
- this server with each engine on an f16 copy of the model (MOVIEMIND_MODEL_WEIGHTS=f16),
- llama-cpp-python's own OpenAI server (`python -m llama_cpp.server`), over HTTP;
time to first token (cold prompt), decode tokens/s, and decode weight bytes read per second
against this machine's memory read bandwidth, measured here with numpy. Then the prefix cache
(400-token shared prefix + 50-token suffix, cached vs uncached time to first token), and a
projection for Mistral-7B-OpenOrca Q4_K_M on 4- and 8-core Linodes.
Writes docs/benchmarks/model_server.json, renders model_server.md from it and prints it. Over 400
lines on purpose: the measurements, the projection and the report's prose are one experiment; the
shared machinery (servers, SSE, machine, report) is in devstack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from devstack.process import ServerProcess, child_env, free_port, python_module
from devstack.report import BenchReport, Block, Cell, Table, blocks, write_report
from devstack.sse import sse_events

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "docs" / "benchmarks"
CACHE_DIR = ROOT / "var" / "cache" / "model_server"
THREADS = 2
DECODE_TOKENS = 128
RUNS = 5  # measured runs per configuration, after one warm-up
PREFIX_TOKENS, SUFFIX_TOKENS = 400, 50
QUESTION = (
    "List twenty classic science-fiction movies, one per line, each with its year and one "
    "sentence on why it is worth watching."
)

# Mistral-7B-OpenOrca Q4_K_M (TheBloke's mistral-7b-openorca.Q4_K_M.gguf), for the projection.
MISTRAL = {
    "file_bytes": 4.37e9,  # "4.37 GB" as published
    "params": 7.24e9,
    "layers": 32,
    "kv_heads": 8,
    "head_dim": 128,
    "vocab": 32002,
    "dim": 4096,
}
LINODES = [("Dedicated 8 GB", 4, 8), ("Dedicated 16 GB", 8, 16)]  # plan, cores, RAM GiB


@dataclass
class Result:
    """One configuration's measurements (medians over RUNS)."""

    name: str
    ttft_s: list[float] = field(default_factory=list)
    decode_tps: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)

    @property
    def ttft(self) -> float:
        return statistics.median(self.ttft_s)

    @property
    def tps(self) -> float:
        return statistics.median(self.decode_tps)


# ---- memory bandwidth ---------------------------------------------------------------------------


def memory_read_bandwidth(threads: int, mib: int = 512, reps: int = 5) -> float:
    """Bytes/s that `threads` threads read from DRAM (numpy sums over a buffer beyond caches)."""
    data = np.ones(mib * (1 << 20) // 8, dtype=np.float64)
    parts = np.array_split(data, threads)
    best = float("inf")
    for _ in range(reps):
        barrier = threading.Barrier(threads + 1)

        def work(part: np.ndarray, barrier: threading.Barrier) -> None:
            barrier.wait()
            part.sum()  # numpy releases the GIL in the reduction

        workers = [threading.Thread(target=work, args=(p, barrier)) for p in parts]
        for w in workers:
            w.start()
        barrier.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t0)
    return data.nbytes / best


# ---- prompt -------------------------------------------------------------------------------------


def build_prompts(tokenizer, template) -> list[str]:
    """RUNS+1 chat prompts that differ in their first tokens, so no run reuses another's KV."""
    return [
        template.render(
            [
                {"role": "system", "content": f"Session {i}. You are a film expert."},
                {"role": "user", "content": QUESTION},
            ]
        )
        for i in range(RUNS + 1)
    ]


# ---- in-process ---------------------------------------------------------------------------------


class NativeLoop:
    """An engine's own library, in this process, through its native generation loop (greedy)."""

    def __init__(self, engine: str, model_path: str):
        self.engine = engine
        if engine == "ctransformers":
            from ctransformers.llm import LLM, Config

            self._llm = LLM(
                model_path, config=Config(context_length=2048, threads=THREADS, batch_size=512)
            )
        else:
            import llama_cpp

            self._llm = llama_cpp.Llama(
                model_path,
                n_ctx=2048,
                n_batch=512,
                n_threads=THREADS,
                n_threads_batch=THREADS,
                verbose=False,
            )

    def run(self, ids: list[int]) -> tuple[float, list[float]]:
        """(start, arrival time of each token) for one cold prompt, DECODE_TOKENS tokens."""
        if self.engine == "ctransformers":
            tokens = self._llm.generate(
                ids, top_k=1, top_p=1.0, temperature=1.0, repetition_penalty=1.0, reset=True
            )
        else:
            tokens = self._llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True)
        t0 = time.perf_counter()
        times: list[float] = []
        for _tok in tokens:
            times.append(time.perf_counter())
            if len(times) >= DECODE_TOKENS:
                break
        return t0, times

    def close(self) -> None:
        if self.engine == "llama_cpp":
            self._llm.close()
        self._llm = None


def _record(res: Result, t0: float, times: list[float]) -> None:
    res.ttft_s.append(times[0] - t0)
    res.tokens.append(len(times))
    if len(times) > 1:
        res.decode_tps.append((len(times) - 1) / (times[-1] - times[0]))


# ---- over HTTP ----------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(
    name: str, argv: list[str], env: dict[str, str], port: int, ready_path: str, log_dir: Path
) -> Iterator[str]:
    """Start a server subprocess on `port`; yield its base URL once ready; stop it."""
    server = ServerProcess(name, argv, child_env(env), port, log_dir, ready_path=ready_path)
    with server.start():
        server.wait_ready(300)
        yield server.url


@contextlib.contextmanager
def server_process(
    args: list[str], env: dict[str, str], ready_path: str, log: Path
) -> Iterator[str]:
    """`serving` as benchmarks/prefill_bench.py calls it: "{port}" in args and env values becomes
    a free port; the log goes to <log's folder>/<log's stem>-<port>.log."""
    port = free_port()

    def fill(value: str) -> str:
        return value.replace("{port}", str(port))

    argv = [fill(a) for a in args]
    with serving(
        log.stem, argv, {k: fill(v) for k, v in env.items()}, port, ready_path, log.parent
    ) as base:
        yield base


def stream_completion(base: str, body: dict) -> tuple[float, list[float]]:
    """POST a streamed completion; (request start, arrival time of each text chunk)."""
    times: list[float] = []
    with httpx.Client(timeout=300, trust_env=False) as client:
        t0 = time.perf_counter()
        with client.stream("POST", base + "/v1/completions", json={**body, "stream": True}) as r:
            r.raise_for_status()
            for _event, data in sse_events(r.iter_bytes()):
                if not data.startswith("{"):  # the closing [DONE]
                    continue
                doc = json.loads(data)
                if doc.get("choices") and doc["choices"][0].get("text"):
                    times.append(time.perf_counter())
    return t0, times


def bench_http(name: str, base: str, prompts: list[str], extra: dict | None = None) -> Result:
    """Cold-prompt TTFT and decode rate of a completions endpoint, streamed."""
    res = Result(name)
    for i, prompt in enumerate(prompts):
        body = {"prompt": prompt, "max_tokens": DECODE_TOKENS, "temperature": 0, **(extra or {})}
        t0, times = stream_completion(base, body)
        if i and times:
            _record(res, t0, times)
    return res


def bench_prefix_cache(
    base: str, prefix_ids: list[int], suffixes: list[list[int]]
) -> tuple[float, float]:
    """Median TTFT of prefix+suffix prompts without and with the prefix KV cache."""

    def ttft(ids: list[int], cache: bool) -> float:
        body = {"prompt": ids, "max_tokens": 1, "temperature": 0, "cache_prompt": cache}
        t0, times = stream_completion(base, body)
        return (times[0] if times else time.perf_counter()) - t0

    uncached = [ttft(prefix_ids + s, False) for s in suffixes[:RUNS]]
    ttft(prefix_ids + suffixes[-1], True)  # puts the prefix into the KV cache
    cached = [ttft(prefix_ids + s, True) for s in suffixes[:RUNS]]
    return statistics.median(uncached), statistics.median(cached)


# ---- report -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPORT_DIR,
        help="where model_server.json and model_server.md go (default docs/benchmarks)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 run of 32 tokens per row: checks that it works"
    )
    args = parser.parse_args(argv)
    global RUNS, DECODE_TOKENS
    if args.quick:
        RUNS, DECODE_TOKENS = 1, 32

    from model_server.chat_template import select_template
    from model_server.compat import ensure_compatible
    from model_server.gguf_file import read_info
    from model_server.model_source import cached_sha256
    from model_server.settings import embedded_model_path
    from model_server.tokenizer import ServerTokenizer

    report = BenchReport.begin(
        "model_server", "Model server benchmark", "python -m benchmarks.model_server_bench"
    )
    log_dir = ROOT / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    gguf_path = embedded_model_path()
    info = read_info(gguf_path, CACHE_DIR, cached_sha256(gguf_path, CACHE_DIR))
    compat_path = str(ensure_compatible(info, CACHE_DIR))
    tok = ServerTokenizer(info)
    template = select_template(info, "auto", tok.tokens)
    prompts = build_prompts(tok, template)
    prompts_ids = [tok.encode(p) for p in prompts]
    bytes_per_token = info.decode_bytes_per_token

    print("measuring memory read bandwidth ...", flush=True)
    bw = {n: memory_read_bandwidth(n) for n in (1, THREADS)}
    bandwidth = max(bw.values())

    print(
        f"  {bw[1] / 1e9:.1f} GB/s (1 thread), {bw[THREADS] / 1e9:.1f} GB/s ({THREADS})", flush=True
    )

    results: list[Result] = []

    def done(r: Result) -> None:
        results.append(r)
        print(f"  {r.name}: TTFT {r.ttft * 1000:.0f} ms, decode {r.tps:.1f} tok/s", flush=True)

    have_llama = _has_llama_cpp()
    engines = ["ctransformers"] + (["llama_cpp"] if have_llama else [])

    # 400-token shared prefix + 50-token suffixes, in the model's own tokens.
    sources = sorted((ROOT / "model_server").glob("*.py"))
    corpus = tok.encode("".join(p.read_text() for p in sources), add_bos=False)
    assert len(corpus) >= PREFIX_TOKENS + SUFFIX_TOKENS * (RUNS + 1), "corpus too short"
    prefix_ids = corpus[:PREFIX_TOKENS]
    suffixes = [
        corpus[PREFIX_TOKENS + i * SUFFIX_TOKENS : PREFIX_TOKENS + (i + 1) * SUFFIX_TOKENS]
        for i in range(RUNS + 1)
    ]
    prefix_rows: list[tuple[str, float, float]] = []

    # The model as shipped first (the rows the targets use), then its f16 copy
    # (MOVIEMIND_MODEL_WEIGHTS=f16), which trades decode speed for faster prompts.
    for weights in ("as_is", "f16"):
        for engine in engines:
            label = engine if weights == "as_is" else f"{engine}, f16 weights"
            print(f"this server, {label} ...", flush=True)
            port = free_port()
            env = {
                "MOVIEMIND_MODEL_PORT": str(port),
                "MOVIEMIND_MODEL_ENGINE": engine,
                "MOVIEMIND_MODEL_WEIGHTS": weights,
                "MOVIEMIND_MODEL_THREADS": str(THREADS),
                "MOVIEMIND_MODEL_CACHE_DIR": str(CACHE_DIR),
                "MOVIEMIND_MODEL_LOG_LEVEL": "warning",
            }
            with serving(
                f"model_server-{engine}-{weights}",
                python_module("model_server"),
                env,
                port,
                "/readyz",
                log_dir,
            ) as base:
                stream_completion(base, {"prompt": "warm up", "max_tokens": 4, "temperature": 0})
                engine_label = f"{engine} engine" + (", f16 weights" if weights == "f16" else "")
                served = Result(f"this server, {engine_label} (HTTP)")

                def http_run(i: int, base: str = base) -> tuple[float, list[float]]:
                    body = {"prompt": prompts[i], "max_tokens": DECODE_TOKENS, "temperature": 0}
                    return stream_completion(base, body)

                if weights == "as_is":
                    # In-process and served runs alternate, so drift in the machine's speed
                    # (other tenants, frequency) touches both sides of the ratio alike.
                    path = compat_path if engine == "ctransformers" else str(gguf_path)
                    native = NativeLoop(engine, path)
                    inproc = Result(f"{engine}, in-process (native loop)")
                    for i in range(len(prompts)):
                        runs = [
                            (inproc, lambda i=i, n=native: n.run(prompts_ids[i])),
                            (served, lambda i=i: http_run(i)),
                        ]
                        for res, run in runs if i % 2 == 0 else runs[::-1]:
                            t0, times = run()
                            if i and times:
                                _record(res, t0, times)
                    native.close()
                    done(inproc)
                else:
                    for i in range(len(prompts)):
                        t0, times = http_run(i)
                        if i and times:
                            _record(served, t0, times)
                done(served)
                unc, cac = bench_prefix_cache(base, prefix_ids, suffixes)
                prefix_rows.append((label, unc, cac))
                print(
                    f"  prefix cache: {unc * 1000:.0f} ms uncached, {cac * 1000:.0f} ms cached",
                    flush=True,
                )

    if have_llama:
        print("llama_cpp.server ...", flush=True)
        port = free_port()
        args_ = python_module(
            "llama_cpp.server", "--model", str(gguf_path), "--host", "127.0.0.1",
            "--port", str(port), "--n_threads", str(THREADS), "--n_threads_batch", str(THREADS),
            "--n_ctx", "2048", "--n_batch", "512",
        )  # fmt: skip
        with serving("llama_cpp_server", args_, {}, port, "/v1/models", log_dir) as base:
            stream_completion(base, {"prompt": "warm up", "max_tokens": 4, "temperature": 0})
            done(bench_http("llama_cpp.server (llama-cpp-python's own, HTTP)", base, prompts))

    body = render(
        results, prefix_rows, bw, bandwidth, bytes_per_token, info, have_llama,
        prompt_tokens=len(prompts_ids[0]), quick=args.quick,
    )  # fmt: skip
    raw = {
        "quick": args.quick,
        "runs": RUNS,
        "decode_tokens": DECODE_TOKENS,
        "threads": THREADS,
        "prompt_tokens": len(prompts_ids[0]),
        "model": {"file": Path(info.path).name, "bytes": info.file_size},
        "decode_bytes_per_token": bytes_per_token,
        "memory_read_bandwidth_bytes_s": {str(k): v for k, v in bw.items()},
        "configurations": results,
        "prefix_cache_ttft_s": [
            {"engine": e, "uncached": u, "cached": c} for e, u, c in prefix_rows
        ],
    }
    report.finish(results=raw, blocks=body)
    json_path, md_path = write_report(report, args.out_dir)
    print(md_path.read_text())
    print(f"wrote {md_path} from {json_path.name} ({report.duration_s:.0f} s)")
    return 0


def _has_llama_cpp() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _find(results: list[Result], prefix: str) -> Result | None:
    return next((r for r in results if r.name.startswith(prefix)), None)


def render(
    results: list[Result],
    prefix_rows: list[tuple[str, float, float]],
    bw: dict[int, float],
    bandwidth: float,
    bytes_per_token: int,
    info,
    have_llama: bool,
    prompt_tokens: int,
    quick: bool = False,
) -> list[Block]:
    """The report's blocks (the header with machine, date and load is the renderer's)."""
    gb = 1e9
    lines: list[str | Block] = [
        f"Numbers are medians of {RUNS} runs after a warm-up; each engine's in-process and served "
        "runs alternate.",
        "",
        *(
            [
                "**Quick check (`--quick`: 1 run, 32 tokens per row): it shows the benchmark "
                "works, not final numbers; `make bench` writes those.**",
                "",
            ]
            if quick
            else []
        ),
        f"Model: `{Path(info.path).name}` ({info.file_size / 1e6:.1f} MB; decode reads "
        f"{bytes_per_token / 1e6:.1f} MB of weights per token). Same prompt text for every row "
        f"(a ChatML prompt of {prompt_tokens} tokens), greedy, {THREADS} threads, {DECODE_TOKENS} tokens decoded. "
        "Each run's prompt starts differently, so time to first token is a cold prompt everywhere "
        "(HTTP rows include HTTP, tokenization and SSE).",
        "",
        f"Memory read bandwidth (numpy sum over 512 MiB): {bw[1] / gb:.1f} GB/s with 1 thread, "
        f"{bw[THREADS] / gb:.1f} GB/s with {THREADS} threads.",
        "",
    ]
    rows: list[list[Cell]] = []
    for r in results:
        if not r.decode_tps:
            rows.append([r.name, "n/a", "n/a", "n/a", "n/a"])
            continue
        rate = r.tps * bytes_per_token
        rows.append(
            [
                r.name,
                f"{r.ttft * 1000:.0f} ms",
                f"{r.tps:.1f}",
                f"{rate / gb:.1f} GB/s",
                f"{100 * rate / bandwidth:.0f}%",
            ]
        )
    head = ["configuration", "time to first token", "decode tokens/s", "weight bytes read/s"]
    lines.append(Table([*head, "of bandwidth"], rows))
    lines += ["", "Targets (issue 3):", ""]
    for engine in ("ctransformers", "llama_cpp"):
        ours, native = (
            _find(results, f"this server, {engine}"),
            _find(results, f"{engine}, in-process"),
        )
        if ours and native and ours.decode_tps and native.decode_tps:
            ratio = ours.tps / native.tps
            lines.append(
                f"- {engine} through this server: {100 * ratio:.0f}% of in-process decode speed "
                f"(target >= 95%): {'met' if ratio >= 0.95 else 'NOT met'}."
            )
    ours, theirs = _find(results, "this server, llama_cpp"), _find(results, "llama_cpp.server")
    if ours and theirs and ours.decode_tps and theirs.decode_tps:
        ratio = ours.tps / theirs.tps
        lines.append(
            f"- llama_cpp engine vs llama-cpp-python's own server: {100 * ratio:.0f}% of its decode "
            f"speed, time to first token {ours.ttft * 1000:.0f} ms vs {theirs.ttft * 1000:.0f} ms "
            f"(target >= 100%): {'met' if ratio >= 1.0 else 'NOT met'}."
        )
    if not have_llama:
        lines.append("- llama-cpp-python is not installed: its rows were skipped.")
    lines += [
        "",
        f"## Prefix KV cache ({PREFIX_TOKENS}-token shared prefix + {SUFFIX_TOKENS}-token suffix)",
        "",
        "Uncached: `cache_prompt: false`, all 450 prompt tokens evaluated. Cached: the previous "
        "request had the same prefix, only the suffix is evaluated. Time to first token over HTTP.",
        "",
        Table(
            ["engine", "uncached", "cached", "cached/uncached"],
            [
                [
                    engine,
                    f"{unc * 1000:.0f} ms",
                    f"{cac * 1000:.0f} ms",
                    f"{100 * cac / unc:.0f}% "
                    f"({'meets' if cac <= 0.5 * unc else 'misses'} the <= 50% target)",
                ]
                for engine, unc, cac in prefix_rows
            ],
        ),
    ]
    if any("f16" in name for name, _, _ in prefix_rows):
        lines += [
            "",
            "Rows with f16 weights run `MOVIEMIND_MODEL_WEIGHTS=f16`: the same model with every "
            "quantized tensor dequantized to f16 (model_server/weights.py). This CPU has AVX, FMA "
            "and F16C but no AVX2, so quantized dot products run 128 bits wide while llama.cpp's "
            "f16 matrix multiply uses 256-bit FMA: prompts evaluate faster, and decoding, which "
            "reads 2.7x the bytes per token, slows down. The edge benchmark uses this to reach "
            "its first-token target.",
        ]
    lines += ["", *projection(results, bandwidth, bytes_per_token, prefix_rows)]
    return blocks(*lines)


def projection(
    results: list[Result],
    bandwidth: float,
    bytes_per_token: int,
    prefix_rows: list[tuple[str, float, float]],
) -> list[str | Block]:
    """Mistral-7B-OpenOrca Q4_K_M on Linode Dedicated 4- and 8-core plans: a projection."""
    m = MISTRAL
    embd = m["vocab"] * m["dim"] * 4.5 / 8  # Q4_K: 4.5 bits per weight
    weights_per_token = m["file_bytes"] - embd
    kv_per_slot = 2 * m["layers"] * 2048 * m["kv_heads"] * m["head_dim"] * 2  # f16 K and V
    overhead = 0.6e9  # Python, HTTP server, compute buffers (~0.3 GB with SmolLM2) + margin
    best = max((r for r in results if r.decode_tps), key=lambda r: r.tps, default=None)
    measured_eff = (best.tps * bytes_per_token / bandwidth) if best else 0.0
    # At 7B the fixed per-token costs that dominate a 135M model vanish; llama.cpp-style decode
    # then typically reaches 60-80% of the bandwidth bound. 70% is used, stated as an assumption.
    efficiency = 0.7
    # Prompt evaluation is compute-bound: scale the measured SmolLM2 prompt rate by FLOPs.
    smol_params = 134.5e6
    unc = min((u for name, u, _ in prefix_rows if "f16" not in name), default=None)
    flops_here = (2 * smol_params * (PREFIX_TOKENS + SUFFIX_TOKENS) / unc) if unc else None
    out: list[str | Block] = [
        "## Projection: Mistral-7B-OpenOrca Q4_K_M on Linode (not measured)",
        "",
        "**This is a projection, not a measurement**: the model is not available on this machine.",
        "",
        f"- Decode reads about {weights_per_token / 1e9:.2f} GB of weights per token "
        f"({m['file_bytes'] / 1e9:.2f} GB file, less the embedding table, which is only indexed), "
        "so tokens/s <= memory read bandwidth / that. More cores hardly raise this bound (one thread "
        "reads most of the bandwidth measured above); the bound column uses this machine's "
        f"{bandwidth / 1e9:.0f} GB/s (a Linode's is assumed similar: the same class of server memory). "
        f"The expected column assumes {100 * efficiency:.0f}% of the bound (the best engine "
        f"reached {100 * measured_eff:.0f}% here on a 135M model, where per-token overheads weigh "
        "far more).",
        f"- RAM: weights (mmap, page cache) + an f16 KV cache of {kv_per_slot / 1e9:.2f} GB per "
        f"slot at 2048 tokens + {overhead / 1e9:.1f} GB for the process.",
        "- Prompt evaluation is compute-bound: the prompt columns scale this run's best uncached "
        f"SmolLM2 prompt rate by FLOPs per token (2 x {m['params'] / 1e9:.2f} B vs 2 x 0.13 B "
        "parameters) and by cores. Small models use cores less efficiently, so these are upper "
        "bounds; they are why the edge keeps its system prompt identical across requests (with "
        "the prefix cache only the short per-request part is evaluated).",
        "",
    ]
    rows: list[list[Cell]] = []
    for plan, cores, ram in LINODES:
        need = m["file_bytes"] + kv_per_slot + overhead
        bound = bandwidth / weights_per_token
        prompt_cols = ["n/a", "n/a"]
        if flops_here:
            flops = flops_here * cores / THREADS
            per_token = 2 * m["params"]
            prompt_cols = [
                f"~{PREFIX_TOKENS * per_token / flops:.0f} s",
                f"~{SUFFIX_TOKENS * per_token / flops:.1f} s",
            ]
        rows.append(
            [
                plan,
                cores,
                f"{ram} GB",
                f"{need / 1e9:.1f} GB",
                f"{bound:.1f} tok/s",
                f"~{bound * efficiency:.1f} tok/s",
                *prompt_cols,
            ]
        )
    head = ["Linode plan", "cores", "RAM", "RAM needed (1 slot)", "decode bound", "decode expected"]
    prompts = [f"{PREFIX_TOKENS}-token prompt, uncached", f"{SUFFIX_TOKENS}-token suffix, cached"]
    out.append(Table([*head, *prompts], rows))
    return out


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Turn SIGTERM into SystemExit so the server subprocesses are stopped by their `finally`.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())

"""What guided choice costs the model server: building a request's choices and masking each token.

`python -m benchmarks.guided_choice_bench` loads the embedded SmolLM2's tokenizer (as the model
server does) and, for every movie of the sample catalog that has notes, the sentences the edge
would send as `guided_choice` (edge/reason_choices.py). For each it times, on this CPU:

* building the request's ChoiceSpec (the tokenizer's own spelling of every choice);
* masking the logits at each step of writing the longest choice (ChoiceState.allowed plus the
  -inf fill), the work added to every generated token; an unconstrained token adds none.

It prints the numbers and writes docs/benchmarks/guided_choice.md. For scale: the model server
decodes about 105 SmolLM2 tokens a second on this kind of machine, ~10 ms a token
(docs/benchmarks/model_server.md).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.edge_bench import loadavg, machine, pct, table
from devstack.machine import cpu_model_and_flags
from edge.index_store import catalog_people
from edge.reason_choices import reason_choices
from model_server.gguf_file import read_info
from model_server.guided import ChoiceSpec, ChoiceState, TokenTable, constrain
from model_server.model_source import cached_sha256, resolve_model
from model_server.settings import load_settings
from model_server.tokenizer import ServerTokenizer
from moviemind_core.bundle import Bundle

ROOT = Path(__file__).resolve().parents[1]
OUT_MD = ROOT / "docs" / "benchmarks" / "guided_choice.md"
OUT_JSON = OUT_MD.with_suffix(".json")


def main() -> int:
    settings = load_settings({})
    path, sha = resolve_model(settings)
    cache = Path(settings.cache_dir)
    info = read_info(path, cache, sha or cached_sha256(path, cache))
    tok = ServerTokenizer(info)
    t0 = time.perf_counter()
    table_ = TokenTable.of(tok)
    table_ms = (time.perf_counter() - t0) * 1000
    movies = [m for m in Bundle.load(ROOT / "var" / "index").movies if m.keywords]
    people = catalog_people(movies)
    logits = np.random.default_rng(0).standard_normal(tok.vocab_size).astype(np.float32)
    ends = sorted(tok.end_ids)
    counts, build_ms, step_ms, steps = [], [], [], []
    for i, m in enumerate(movies):
        choices = reason_choices(m, people)
        t0 = time.perf_counter()
        spec = ChoiceSpec(choices, table_, tok.encode_batch)
        build_ms.append((time.perf_counter() - t0) * 1000)
        counts.append(len(choices))
        # Walk the longest choice in the tokenizer's own spelling, timing each step's mask.
        longest = max(choices, key=len)
        state = ChoiceState(spec)
        n = 0
        for token in tok.encode_batch([longest])[0]:
            t0 = time.perf_counter()
            constrain(logits, state, ends)
            step_ms.append((time.perf_counter() - t0) * 1000)
            state.advance(token)
            n += 1
        steps.append(n)
        if i % 500 == 0:
            print(f"{i}/{len(movies)} movies", flush=True)
    cpu, flags = cpu_model_and_flags()
    rows = [
        ["movies (with notes)", f"{len(movies)}"],
        ["choices per pick p50 / p95 / max", f"{pct(counts, 50):.0f} / {pct(counts, 95):.0f} / "
         f"{max(counts)}"],
        ["vocabulary table, once per server (ms)", f"{table_ms:.0f}"],
        ["build a request's choices p50 / p95 (ms)", f"{pct(build_ms, 50):.1f} / "
         f"{pct(build_ms, 95):.1f}"],
        ["mask per token p50 / p95 / max (ms)", f"{pct(step_ms, 50):.2f} / {pct(step_ms, 95):.2f}"
         f" / {max(step_ms):.2f}"],
        ["tokens in the longest choice p50", f"{pct(steps, 50):.0f}"],
    ]  # fmt: skip
    m = machine()
    text = "\n".join(
        [
            "# Guided choice: what the constraint costs",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M UTC} with "
            f"`python -m benchmarks.guided_choice_bench`; {cpu}, {m['cores']} cores (flags: "
            f"{', '.join(f for f, on in flags.items() if on) or 'none'}); load average "
            f"{loadavg()}. SmolLM2-135M-Instruct's tokenizer ({tok.vocab_size} tokens); the "
            "choices the edge sends for every movie of the sample catalog that has notes.",
            "",
            table(["", "measured"], rows),
            "",
            "The mask is the only work guided choice adds per generated token. For scale, the "
            "model server decodes about 105 SmolLM2 tokens a second on this machine, ~10 ms a "
            "token (docs/benchmarks/model_server.md): the typical token pays 0.1% more, and "
            "only the first token of a request with hundreds of choices (every choice still "
            "open) pays up to a few ms. Building the choices happens once per request, before "
            "the first token.",
            "",
        ]
    )
    OUT_MD.write_text(text)
    OUT_JSON.write_text(
        json.dumps(
            {
                "when": f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
                "cpu": cpu,
                "choices": counts,
                "build_ms": build_ms,
                "mask_ms_p50": pct(step_ms, 50),
                "mask_ms_p95": pct(step_ms, 95),
                "mask_ms_max": max(step_ms),
                "table_ms": table_ms,
            }
        )
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

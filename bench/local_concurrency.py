"""Aggregate throughput with 8 concurrent chat requests to `pg-llm serve` (continuous
batching on llama.cpp) vs llama-cpp-python answering the same 8 one after another.

    .venv/bin/python bench/local_concurrency.py [--tokens 128] [--threads 2]

Target: at least 1.5x.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_common import engine_and_llama_cpp, load_average

TOPICS = ["a lighthouse keeper", "a robot chef", "a lost dog", "a mountain village",
          "a time traveller", "an old oak tree", "a jazz pianist", "a desert caravan"]


def messages(topic: str) -> list[dict]:
    return [{"role": "user", "content": f"Write a short story about {topic}."}]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

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
        totals = {"base": [0, 0.0], "local": [0, 0.0]}
        for _ in range(args.rounds):  # alternate so outside load hits both alike
            for name, run in (("base", baseline_round), ("local", local_round)):
                start = time.perf_counter()
                totals[name][0] += run()
                totals[name][1] += time.perf_counter() - start
    (bt, bs), (lt, ls) = totals["base"], totals["local"]
    print(f"8 chat requests x {args.rounds} rounds, SmolLM2-135M-Instruct, greedy, max "
          f"{args.tokens} tokens each, {args.threads} threads (load average before: "
          f"{load_before})")
    print(f"  llama-cpp-python (Q4_1 as shipped), one after another: {bt:5d} tokens in "
          f"{bs:6.1f} s = {bt / bs:7.1f} tokens/s")
    print(f"  pg-llm serve (Q8_0), 8 concurrent over HTTP:          {lt:5d} tokens in "
          f"{ls:6.1f} s = {lt / ls:7.1f} tokens/s")
    print(f"  ratio: {(lt / ls) / (bt / bs):.2f}x (target >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

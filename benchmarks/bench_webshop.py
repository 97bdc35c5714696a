"""WebShop speed: environment steps per second, and search latency at 1k and 100k products side by side.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_webshop.py [--large 100000] [--json]

- catalogue: generation time and BM25 index build time at each size;
- search: latency of distinct queries (goal instructions, so no memoised answers), median and p95 in ms;
- env: steps/s of the oracle (search, page, open, options, buy) and of a random policy over the available
  actions (its searches are the goal's own words), on the default 2000-product catalogue.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hgpo_cli.envs.base import TaskSpec  # noqa: E402
from hgpo_cli.envs.webshop.catalogue import generate  # noqa: E402
from hgpo_cli.envs.webshop.env import WebShopEnv  # noqa: E402
from hgpo_cli.envs.webshop.oracle import oracle_queries, play_oracle  # noqa: E402
from hgpo_cli.envs.webshop.search import SearchEngine  # noqa: E402


def bench_search(num_products: int, num_queries: int = 300) -> dict:
    import bm25s  # noqa: F401 - its import (about 1 s) is not part of the index time

    t0 = time.perf_counter()
    cat = generate(0, num_products, num_queries)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = SearchEngine(cat.products)
    index_s = time.perf_counter() - t0
    queries = [oracle_queries(g, cat.by_asin[g["asin"]])[0] for g in cat.goals]
    times = []
    for q in queries:
        t0 = time.perf_counter()
        engine._search(q, 50)  # the search itself, without the per-process memo
        times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "products": num_products,
        "generate_s": round(gen_s, 2),
        "index_s": round(index_s, 2),
        "query_ms_median": round(1000 * statistics.median(times), 3),
        "query_ms_p95": round(1000 * times[int(0.95 * (len(times) - 1))], 3),
    }


def bench_env(num_products: int = 2000, episodes: int = 300, seed: int = 0) -> dict:
    cat = generate(seed, num_products, episodes)
    cat.search_engine  # noqa: B018 - build the index outside the timing
    # oracle episodes
    steps = 0
    t0 = time.perf_counter()
    for i in range(episodes):
        env = WebShopEnv(TaskSpec("webshop", str(i), "x"), cat, i, max_steps=15)
        _, actions = play_oracle(env)
        steps += len(actions)
    oracle_s = time.perf_counter() - t0
    # random policy over the available actions
    rng = random.Random(seed)
    rsteps = 0
    t0 = time.perf_counter()
    for i in range(episodes):
        env = WebShopEnv(TaskSpec("webshop", str(i), "x"), cat, i, max_steps=15)
        res = env.reset()
        words = env.instruction.split()
        while not res.done:
            action = rng.choice(res.admissible_actions)
            if action.startswith("search["):
                action = "search[" + " ".join(rng.sample(words, min(4, len(words)))) + "]"
            res = env.step(action)
            rsteps += 1
    random_s = time.perf_counter() - t0
    return {
        "products": num_products,
        "episodes": episodes,
        "oracle_steps_per_s": round(steps / oracle_s),
        "oracle_mean_steps": round(steps / episodes, 2),
        "random_steps_per_s": round(rsteps / random_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000, help="size of the large catalogue")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = {
        "search": [bench_search(1000), bench_search(args.large)],
        "env": bench_env(),
    }
    if args.json:
        print(json.dumps(out))
        return
    print("search (BM25, bm25s, top 50; distinct queries)")
    print(f"{'products':>10} {'generate s':>11} {'index s':>8} {'median ms':>10} {'p95 ms':>8}")
    for row in out["search"]:
        print(
            f"{row['products']:>10} {row['generate_s']:>11} {row['index_s']:>8} "
            f"{row['query_ms_median']:>10} {row['query_ms_p95']:>8}"
        )
    env = out["env"]
    print(
        f"env ({env['products']} products, {env['episodes']} episodes): oracle {env['oracle_steps_per_s']} steps/s"
        f" ({env['oracle_mean_steps']} steps/episode), random policy {env['random_steps_per_s']} steps/s"
    )


if __name__ == "__main__":
    main()

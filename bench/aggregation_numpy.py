# Flower's FedAvg aggregate (flwr/server/strategy/aggregate.py, `aggregate`), re-run here with numpy on the same
# shapes as bench/aggregation.ts: WORKERS updates of SIZE float32 (a big matrix and a 1,000-float bias, four distinct
# updates cycled), sample counts 1..WORKERS. Prints one JSON line: median seconds per aggregate and GB/s of input.
# Usage: python3 bench/aggregation_numpy.py SIZE WORKERS RUNS
import json
import sys
import time
from functools import reduce

import numpy as np


def aggregate(results):
    """Flower's weighted average, verbatim: scale each layer by its sample count, add them up, divide."""
    num_examples_total = sum(num_examples for (_, num_examples) in results)
    weighted_weights = [[layer * num_examples for layer in weights] for weights, num_examples in results]
    return [reduce(np.add, layer_updates) / num_examples_total for layer_updates in zip(*weighted_weights)]


def main():
    size, workers, runs = (int(a) for a in sys.argv[1:4])
    rng = np.random.default_rng(0)
    updates = [
        [rng.standard_normal(n, dtype=np.float32) * np.float32(0.01) for n in (size - 1000, 1000)] for _ in range(4)
    ]
    results = [(updates[w % 4], 1 + w) for w in range(workers)]
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = aggregate(results)
        seconds.append(time.perf_counter() - t0)
        assert out[0].dtype == np.float32 and out[0].shape == (size - 1000,)
        del out
    seconds.sort()
    median = seconds[len(seconds) // 2]
    print(json.dumps({"seconds": median, "GBs": workers * size * 4 / median / 1e9, "numpy": np.__version__}))


main()

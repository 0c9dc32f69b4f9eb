"""How often the fidelity metrics' bootstrap intervals hold each estimator's mean, on Gaussian features; a script, not
a test (docs/fidelity.md, "Intervals", holds its figures):

    python tests/benchmarks/fidelity_interval_coverage.py --n 200 --dim 16 --scale 1.1 --shift 0.15 --datasets 100

Real features are N(0, I), synthetic ones N(shift, scale² I). The estimator's mean is the mean of the point estimates
over `--truth` independent data sets; each of `--datasets` further data sets then gets its intervals from
`fidelity`. The plain percentile interval is the moved one plus the bias it removed (the same unless the move was
clipped at a bound of the metric's range).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from cxrbench.fidelity import metrics
from cxrbench.fidelity.metrics import FidelitySettings, fidelity

NAMES = ("fid", "kid", "precision", "recall", "density", "coverage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("n", 200), ("dim", 16), ("truth", 300), ("datasets", 100), ("n-boot", 200)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--scale", type=float, default=1.1)
    parser.add_argument("--shift", type=float, default=0.15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    def draw() -> tuple[np.ndarray, np.ndarray]:
        return (rng.normal(size=(args.n, args.dim)),
                rng.normal(size=(args.n, args.dim)) * args.scale + args.shift)

    points = []
    for _ in range(args.truth):
        real, synthetic = draw()
        points.append({"fid": metrics.fid(real, synthetic), "kid": metrics.kid(real, synthetic),
                       **metrics.prdc(real, synthetic)})
    mean = {name: float(np.mean([p[name] for p in points])) for name in NAMES}
    spread = {name: float(np.std([p[name] for p in points])) for name in NAMES}
    held = {kind: dict.fromkeys(NAMES, 0) for kind in ("plain", "moved")}
    widths: dict[str, list[float]] = {name: [] for name in NAMES}
    for seed in range(args.datasets):
        result = fidelity(*draw(), FidelitySettings(n_boot=args.n_boot, seed=seed))
        for name in NAMES:
            estimate = getattr(result, name)
            held["moved"][name] += estimate.ci_low <= mean[name] <= estimate.ci_high
            held["plain"][name] += estimate.ci_low + estimate.bias <= mean[name] <= estimate.ci_high + estimate.bias
            widths[name].append(estimate.ci_high - estimate.ci_low)
    z = 2 * 1.959964
    print(json.dumps({"settings": vars(args), "estimator_mean": mean, "estimator_sd": spread,
                      "held": {kind: {name: count / args.datasets for name, count in counts.items()}
                               for kind, counts in held.items()},
                      "width_over_estimator_spread": {name: float(np.mean(widths[name]) / (z * spread[name]))
                                                      for name in NAMES}}, indent=1))


if __name__ == "__main__":
    main()

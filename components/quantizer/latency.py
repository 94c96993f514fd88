"""How much slower is one serving function than another? Paired, interleaved calls and a confidence interval
for the median ratio, so that a gate on it judges the model, not the machine (README, "Quantized push")."""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

LATENCY_BATCHES = (1, 256)
# Paired rounds after which the gate looks at its interval, per batch size: it stops at the first look whose
# interval lies wholly on one side of max_latency_ratio. A clear verdict (the usual case: int8 serves the
# float model's ops) costs 48 rounds, a close one up to 304. Multiples of 8: each look ends on a whole cycle
# of the call orders (interleaved_times).
LATENCY_LOOKS = (48, 96, 192, 304)
# The latency gate fails only when the quantized model is slower than max_latency_ratio with this confidence,
# over all its looks together: each look uses 1 - (1 - LATENCY_CONFIDENCE) / len(looks) (Bonferroni), so
# looking several times does not raise the chance that noise fails (or passes) a model.
LATENCY_CONFIDENCE = 0.99


def look_confidence(looks: Sequence[int], confidence: float = LATENCY_CONFIDENCE) -> float:
    return 1.0 - (1.0 - confidence) / len(looks)


def percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def interleaved_times(fns: Dict[str, Any], serialized: Sequence[bytes], batch: int, rounds: int,
                      warmup: int = 10, first_round: int = 0) -> Dict[str, List[float]]:
    """Milliseconds of each call, per model: every round calls each model once, in an order that rotates
    from round to round, so that machine noise and call-order effects hit the models alike. `first_round`
    continues the rotation of an earlier call."""
    import tensorflow as tf

    examples = tf.constant([serialized[i % len(serialized)] for i in range(batch)])
    items = list(fns.items())
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for i in range(first_round - warmup, first_round + rounds):
        shift = i % len(items)
        order = items[shift:] + items[:shift]
        if (i // len(items)) % 2:
            order.reverse()
        for name, fn in order:
            start = time.perf_counter()
            fn(examples=examples)["predictions"].numpy()
            if i >= first_round:
                times[name].append((time.perf_counter() - start) * 1000.0)
    return times


@dataclasses.dataclass(frozen=True)
class RatioInterval:
    """The median over rounds of (other model's time / base model's time) in the same round, with a
    distribution-free confidence interval for that median."""
    ratio: float
    low: float
    high: float
    rounds: int
    confidence: float

    def to_json(self) -> Dict[str, float]:
        return dataclasses.asdict(self)


def median_interval_ranks(n: int, confidence: float) -> int:
    """k such that [x_(k), x_(n+1-k)] (1-based order statistics) covers the median of any continuous
    distribution with probability >= confidence: the largest k with P(Binomial(n, 1/2) < k) <= alpha/2."""
    alpha_half = (1.0 - confidence) / 2.0
    total, cumulative, k = 2 ** n, 0, 0
    for i in range(n + 1):
        cumulative += math.comb(n, i)  # P(B <= i) * 2^n
        if cumulative * 1.0 / total > alpha_half:
            break
        k = i + 1
    return max(k, 1)


def paired_ratio_interval(base_ms: Sequence[float], other_ms: Sequence[float],
                          confidence: float = LATENCY_CONFIDENCE) -> RatioInterval:
    """Per-round ratios other/base; their median and its confidence interval (sign-test order statistics).

    Paired per round, a burst of load slows both calls of that round and leaves their ratio alone; the
    median ignores the rounds it does not; the interval says how far the median can move by chance."""
    import numpy as np

    ratios = np.sort(np.asarray(other_ms) / np.asarray(base_ms))
    n = len(ratios)
    k = median_interval_ranks(n, confidence)
    return RatioInterval(ratio=float(np.median(ratios)), low=float(ratios[k - 1]), high=float(ratios[n - k]),
                         rounds=n, confidence=confidence)


def latencies(fns: Dict[str, Any], serialized: Sequence[bytes], batch_sizes=LATENCY_BATCHES,
              looks: Sequence[int] = LATENCY_LOOKS, max_ratio: Optional[float] = None) -> Dict[str, Any]:
    """`ms[model][batch]` (p50 and p99 per call) and, for two models, `ratio[batch]`: the second model's
    time over the first's, paired per round (paired_ratio_interval), measured until a look decides
    against max_ratio (balanced_latencies)."""
    return balanced_latencies({name: [fn] for name, fn in fns.items()}, serialized, batch_sizes, looks,
                              max_ratio)


def decided(interval: RatioInterval, max_ratio: Optional[float]) -> bool:
    """Whether more rounds could change the gate's verdict: not once the interval lies wholly on one side of
    max_ratio (with no gate, nothing is decided by measuring longer)."""
    return max_ratio is None or interval.high <= max_ratio or interval.low > max_ratio


def sequential_interval(measure: Callable[[int], Tuple[Sequence[float], Sequence[float]]],
                        looks: Sequence[int] = LATENCY_LOOKS, max_ratio: Optional[float] = None) -> RatioInterval:
    """The paired ratio interval at the first look that decides against max_ratio (else at the last look).
    `measure(n)` runs n more paired rounds and returns their (base, other) times."""
    base: List[float] = []
    other: List[float] = []
    confidence, done = look_confidence(looks), 0
    for look in looks:
        more_base, more_other = measure(look - done)
        base.extend(more_base)
        other.extend(more_other)
        done = look
        interval = paired_ratio_interval(base, other, confidence)
        if decided(interval, max_ratio):
            break
    return interval


def balanced_latencies(copies: Dict[str, List[Any]], serialized: Sequence[bytes], batch_sizes=LATENCY_BATCHES,
                       looks: Sequence[int] = LATENCY_LOOKS, max_ratio: Optional[float] = None) -> Dict[str, Any]:
    """As latencies, with each model given as several loaded copies: a round calls every copy, a model's
    time in a round is the sum over its copies. Copies loaded in mirrored order (float, quantized,
    quantized, float) cancel out where in memory each load lands, which moved a model's time by ~0.5-1%.

    Per batch size the rounds run in looks (sequential_interval); one model alone runs the first look."""
    names = list(copies)
    flat = {(name, i): fn for name in names for i, fn in enumerate(copies[name])}
    result: Dict[str, Any] = {"ms": {name: {} for name in names}, "ratio": {}}
    for batch in batch_sizes:
        times: Dict[Any, List[float]] = {key: [] for key in flat}

        def measure(rounds: int) -> Tuple[List[float], ...]:
            done = len(times[next(iter(flat))])
            more = interleaved_times(flat, serialized, batch, rounds, warmup=0 if done else 10, first_round=done)
            for key, values in more.items():
                times[key].extend(values)
            return tuple([sum(t) for t in zip(*(more[(name, i)] for i in range(len(copies[name]))))]
                         for name in names)

        if len(names) == 2:
            result["ratio"][batch] = sequential_interval(measure, looks, max_ratio)
        else:
            measure(looks[0])
        for name in names:
            per_call = [t for i in range(len(copies[name])) for t in times[(name, i)]]
            result["ms"][name][batch] = {"p50_ms": percentile(per_call, 50), "p99_ms": percentile(per_call, 99)}
    return result


def latency_failures(intervals: Dict[str, RatioInterval], max_ratio: float) -> List[str]:
    """Fails only when the quantized model is slower than max_ratio with confidence: the whole interval of
    the median paired ratio lies above it. Noise widens the interval; it cannot fail the gate."""
    return [f"latency at batch {batch} is {i.ratio:.2f}x the float model's ({i.confidence:.2%} "
            f"interval {i.low:.2f}-{i.high:.2f}x over {i.rounds} paired rounds), above "
            f"max_latency_ratio {max_ratio}"
            for batch, i in intervals.items() if i.low > max_ratio]

"""What the oracle benchmarks share (scripts/bench-oracle): a two-sample Kolmogorov-Smirnov test
and the table of answers and latencies per kind of identity."""
import math, statistics


def ks(a, b):
    """Two-sample Kolmogorov-Smirnov: the statistic D and its asymptotic p-value."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            i += 1
        else:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    ne = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


def table(title, seen, kinds, base):
    """Prints one row per kind (statuses and body bytes seen, p50, p90, KS against `base`) and
    how many distinct bodies all kinds gave. `seen[kind]` has "answers" (a set of (status,
    body)) and "ms" (latencies)."""
    print(f"| {title} | answers (status, body bytes) | p50 ms | p90 ms | KS D vs {base} | p |")
    print("|---|---|---:|---:|---:|---:|")
    bodies = set()
    for kind in kinds:
        k = seen[kind]
        ms = sorted(k["ms"])
        answers = ", ".join(f"{s} {len(raw)} B" for s, raw in sorted(k["answers"]))
        bodies |= {raw for _, raw in k["answers"]}
        d, p = ks(k["ms"], seen[base]["ms"]) if kind != base else (0.0, 1.0)
        print(f"| {kind} | {answers} | {statistics.median(ms):.2f} | {ms[int(0.9 * len(ms))]:.2f} | {d:.3f} | {p:.3g} |")
    print(f"\nbodies: {len(bodies)} distinct across all kinds")

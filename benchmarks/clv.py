"""CLV fit (issue #5): our BG/NBD and Gamma-Gamma against lifetimes' on the same summary.

Simulates ``--customers`` customers from the BG/NBD and Gamma-Gamma generative processes
with the CDNOW estimates as the truth (seeded): first purchases spread over two years, a
Poisson purchase process per customer in continuous time, dropout after each repeat
purchase, a spend per purchase. The purchases become dated transactions (whole days),
summarised by our summary SQL on DuckDB (weeks, fractional), and on that one summary the
script times, median of ``--repeat`` runs in the same process:

* ``guanxi.analytics.clv.fit_bgnbd`` vs ``lifetimes.BetaGeoFitter().fit``;
* ``guanxi.analytics.clv.fit_gamma_gamma`` vs ``lifetimes.GammaGammaFitter().fit`` on the
  customers with repeat purchases;
* 12-month CLV for every customer, ours vs lifetimes' ``customer_lifetime_value``;

and prints both parameter sets and whether they agree to 3 significant figures.

Target (issue #5): ours no slower than lifetimes on 1,000,000 customers, same parameters
to 3 significant figures.

    python benchmarks/clv.py                       # 1,000,000 customers, 3 repetitions
    python benchmarks/clv.py --customers 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from guanxi.analytics import clv

TRUTH_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
TRUTH_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
UNTIL = date(2024, 12, 31)
COHORT_DAYS = 730


def simulate(customers: int, seed: int) -> pa.Table:
    """Dated transactions (customer_id, date, amount) from the generative processes."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = (TRUTH_BGNBD[k] for k in ("r", "alpha", "a", "b"))
    lam = rng.gamma(r, 1.0 / alpha, customers)  # purchases per week while alive
    drop = rng.beta(a, b, customers)
    first_day = rng.integers(0, COHORT_DAYS, customers)  # days after the cohort start
    age_weeks = (COHORT_DAYS - first_day) / 7.0
    # Gamma-Gamma: each customer's spend scale, then one gamma draw per purchase.
    nu = rng.gamma(TRUTH_GG["q"], 1.0 / TRUTH_GG["gamma"], customers)

    ids = [np.arange(customers)]
    days = [first_day]
    # Repeat purchases as lifetimes' generator makes them: exponential gaps while alive
    # and before the end, a dropout draw after each purchase — vectorised over customers.
    active = np.arange(customers)
    clock = np.zeros(customers)
    while active.size:
        clock[active] += rng.exponential(1.0, active.size) / lam[active]
        active = active[clock[active] < age_weeks[active]]
        ids.append(active)
        days.append(first_day[active] + np.floor(clock[active] * 7).astype(np.int64))
        active = active[rng.random(active.size) > drop[active]]
    customer_id = np.concatenate(ids)
    day = np.concatenate(days)
    amount = np.round(rng.gamma(TRUTH_GG["p"], 1.0 / nu[customer_id]), 2)
    start = np.datetime64(UNTIL - timedelta(days=COHORT_DAYS), "D")
    return pa.table(
        {
            "customer_id": customer_id,
            "date": pa.array(start + day.astype("timedelta64[D]")),
            "amount": amount,
        }
    )


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def agree(ours: dict[str, float], theirs: dict[str, float]) -> tuple[bool, float]:
    """Same to 3 significant figures, and the largest relative difference."""
    same = all(f"{ours[k]:.3g}" == f"{theirs[k]:.3g}" for k in ours)
    worst = max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in ours)
    return same, worst


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    warnings.simplefilter("ignore")
    started = time.perf_counter()
    transactions = simulate(args.customers, args.seed)
    print(
        f"simulated {args.customers:,} customers, {transactions.num_rows:,} transactions "
        f"in {time.perf_counter() - started:.1f}s"
    )
    con = duckdb.connect()
    con.register("tx", transactions)
    t_summary, s = timed(lambda: clv.transaction_summary(con, "tx", until=UNTIL), 1)
    repeaters = (s.frequency > 0) & (s.monetary > 0)
    folded = clv.aggregate(s.frequency, s.recency, s.T)[1].size
    print(
        f"summary SQL (DuckDB, weeks): {t_summary:.2f}s; {len(s):,} customers, "
        f"{int(repeaters.sum()):,} with repeat purchases, {folded:,} distinct "
        "(frequency, recency, T)"
    )
    print()

    t_ours, ours = timed(lambda: clv.fit_bgnbd(s.frequency, s.recency, s.T), args.repeat)
    t_unfolded, _ = timed(
        lambda: clv.fit_bgnbd(s.frequency, s.recency, s.T, fold=False), args.repeat
    )
    freq, rec, age = pd.Series(s.frequency), pd.Series(s.recency), pd.Series(s.T)
    t_lt, bg = timed(lambda: BetaGeoFitter().fit(freq, rec, age), args.repeat)
    ours_p = {k: getattr(ours, k) for k in ("r", "alpha", "a", "b")}
    lt_p = {k: float(bg.params_[k]) for k in ("r", "alpha", "a", "b")}
    same, worst = agree(ours_p, lt_p)
    print(f"BG/NBD fit, {len(s):,} customers (median of {args.repeat}):")
    print(f"  ours (folded rows)     {t_ours:8.2f}s")
    print(f"  ours (one row each)    {t_unfolded:8.2f}s")
    print(f"  lifetimes BetaGeo      {t_lt:8.2f}s   ratio ours/lifetimes {t_ours / t_lt:.3f}")
    print("  truth " + "  ".join(f"{k}={v:.4g}" for k, v in TRUTH_BGNBD.items()))
    print("  ours  " + "  ".join(f"{k}={v:.4g}" for k, v in ours_p.items()))
    print("  lifetimes " + "  ".join(f"{k}={v:.4g}" for k, v in lt_p.items()))
    print(f"  same to 3 s.f.: {same}; largest relative difference {worst:.1e}")
    print()

    m = pd.Series(s.monetary[repeaters])
    x = pd.Series(s.frequency[repeaters])
    t_gg, gg = timed(lambda: clv.fit_gamma_gamma(s.frequency, s.monetary), args.repeat)
    t_gg_lt, gg_lt = timed(lambda: GammaGammaFitter().fit(x, m), args.repeat)
    gg_p = {"p": gg.p, "q": gg.q, "gamma": gg.gamma}
    gg_lt_p = {
        "p": float(gg_lt.params_["p"]),
        "q": float(gg_lt.params_["q"]),
        "gamma": float(gg_lt.params_["v"]),
    }
    same_gg, worst_gg = agree(gg_p, gg_lt_p)
    print(f"Gamma-Gamma fit, {int(repeaters.sum()):,} repeat customers (median of {args.repeat}):")
    print(f"  ours                   {t_gg:8.2f}s")
    print(f"  lifetimes GammaGamma   {t_gg_lt:8.2f}s   ratio ours/lifetimes {t_gg / t_gg_lt:.3f}")
    print("  truth " + "  ".join(f"{k}={v:.4g}" for k, v in TRUTH_GG.items()))
    print("  ours  " + "  ".join(f"{k}={v:.4g}" for k, v in gg_p.items()))
    print("  lifetimes " + "  ".join(f"{k}={v:.4g}" for k, v in gg_lt_p.items()))
    print(f"  same to 3 s.f.: {same_gg}; largest relative difference {worst_gg:.1e}")
    print()

    t_clv, values = timed(
        lambda: clv.customer_lifetime_value(
            ours, gg, s.frequency, s.recency, s.T, s.monetary, months=12, period="week"
        ),
        1,
    )
    # lifetimes' CLV from our parameters, so the comparison is of the formulas.
    bg.params_ = pd.Series(ours_p)
    gg_lt.params_ = pd.Series({"p": gg.p, "q": gg.q, "v": gg.gamma})
    t_clv_lt, lt_values = timed(
        lambda: gg_lt.customer_lifetime_value(
            bg, freq, rec, age, pd.Series(s.monetary), time=12, discount_rate=0.01, freq="W"
        ),
        1,
    )
    diff = np.max(np.abs(values - lt_values.to_numpy()) / np.maximum(lt_values.to_numpy(), 1e-12))
    print(f"12-month CLV of {len(s):,} customers:")
    print(f"  ours                   {t_clv:8.2f}s")
    print(f"  lifetimes              {t_clv_lt:8.2f}s   largest relative difference {diff:.1e}")
    ok = t_ours <= t_lt and same and t_gg <= t_gg_lt and same_gg
    print()
    print(
        f"target (no slower than lifetimes, same parameters to 3 s.f.): {'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()

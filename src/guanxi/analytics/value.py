"""Step ``clv``: BG/NBD and Gamma-Gamma fitted on the database's own shipments, and every
shipping customer's P(alive), expected shipments, expected spend and lifetime value.

The fit and the predictions are :mod:`guanxi.analytics.clv`'s; this module feeds them the
shipments (the fee as the amount, the local day of ``created_at`` as the date) up to the
run's cut-off day and keeps the results of active customers.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from guanxi.analytics import clv
from guanxi.analytics.models import CustomerClv
from guanxi.analytics.runner import Step, StepContext, StepResult, register


def _run(ctx: StepContext) -> StepResult:
    policy = ctx.policy.clv
    period = cast(clv.Period, policy.period)
    until = ctx.as_of.date()
    table = ctx.workspace.query(
        clv.summary_sql("shipment", until=until, period=period, day="created_at", amount="fee_fen")
    )
    # Archived and merged customers keep their history but get no forecast.
    active = ctx.workspace.query("SELECT id FROM customer WHERE status = 'active'")["id"]
    table = table.filter(pc.is_in(table["customer_id"], value_set=active.combine_chunks()))
    ctx.progress(1, 3)
    summary = clv.summary_from_arrow(table)
    fit = clv.fit_summary(summary, until=until)
    ctx.progress(2, 3)
    f, r, age, m = summary.frequency, summary.recency, summary.T, summary.monetary
    horizon = policy.horizon_months * clv.PERIODS_PER_MONTH[period]
    p_alive = clv.probability_alive(fit.bgnbd, f, r, age)
    purchases = clv.expected_purchases(fit.bgnbd, horizon, f, r, age)
    spend = clv.expected_average_spend(fit.gamma_gamma, f, m)
    value = clv.customer_lifetime_value(
        fit.bgnbd,
        fit.gamma_gamma,
        f,
        r,
        age,
        m,
        months=policy.horizon_months,
        discount_rate=policy.monthly_discount,
        period=period,
    )
    rows = pa.table(
        {
            "customer_id": pa.array(summary.customer_id, pa.int64()),
            "frequency": pa.array(f),
            "recency": pa.array(r),
            "age": pa.array(age),
            "p_alive": pa.array(p_alive),
            "expected_purchases": pa.array(purchases),
            # Fees are in fen, so spend and value are too.
            # A degenerate fit can leave NaN for some histories: no value rather than junk.
            "expected_spend_fen": pa.array(np.rint(np.nan_to_num(spend)).astype(np.int64)),
            "clv_fen": pa.array(np.rint(np.nan_to_num(value)).astype(np.int64)),
        }
    )
    written = ctx.write(CustomerClv, rows)
    ctx.progress(3, 3)
    bg, gg = fit.bgnbd, fit.gamma_gamma
    return StepResult(
        rows=written,
        metrics={
            "customers": fit.customers,
            "period": period,
            "bgnbd": {
                "r": bg.r,
                "alpha": bg.alpha,
                "a": bg.a,
                "b": bg.b,
                "log_likelihood": bg.log_likelihood,
            },
            "gamma_gamma": {"p": gg.p, "q": gg.q, "gamma": gg.gamma},
            "clv_total_fen": int(rows["clv_fen"].to_numpy().sum()) if written else 0,
        },
    )


STEP = register(Step(name="clv", reads=("customer", "shipment"), run=_run, writes=(CustomerClv,)))

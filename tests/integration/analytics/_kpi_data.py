"""A small world whose every KPI is counted by hand: five customers, nine shipments (and
one after the cut-off), five tickets, four claims, cut off at 2026-06-30 12:00 Beijing time.

    A 广东省  s1 04-10 std 10.00  s2 05-05 std 20.00 damaged, late   s3 05-20 express 30.00
              s4 06-10 std 15.00 lost (not delivered)                 (s10 06-30 13:00: after)
    B 浙江省  s5 01-15 std 5.00   s6 05-12 std 8.00, delivered 06-01 00:30 (late)
    C 广东省  s7 03-01 express 12.00
    D (none)  s8 06-02 14:00 std 7.00 (no promise)   s9 06-03 00:30 std 9.00 (16:30 UTC 06-02)
    E 浙江省  never shipped

RFM (5 bins over the four shippers): A champions, B hibernating, C lost, D potential
loyalist, E prospect. B went quiet after s5 (90th day 04-15) and came back on 05-12; C
went quiet after s7 (90th day 05-30) and never came back.

Tickets: t1 A complaint on s2 (May; 30 min, 24 h, CSAT 5), t2 B complaint on s6 (June
01; 120 min, 48 h, reopened, CSAT 2, SLA breached), t3 D inquiry (June 05; 10 min, 2 h),
t4 A complaint on s4 (June 20; open), t5 D complaint on s9 (June 30 11:00; answered
after the cut-off). Claims: c1 on s2 paid 15.00 (May 10), c2 on s4 approved 15.00 (June
15), c3 rejected, c4 submitted.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.integration.analytics.conftest import Rows, local

AS_OF = local(2026, 6, 30, 12, 0)
MAY, JUNE, Q2, Y2026 = date(2026, 5, 1), date(2026, 6, 1), date(2026, 4, 1), date(2026, 1, 1)


def fill(rows: Rows) -> dict[str, int]:
    """Insert the world; returns the ids by name (customers a–e, s1–s10, t1–t5, c1–c4)."""
    start = local(2025, 12, 1, 9, 0)
    ids: dict[str, int] = {}
    for name, region in (("a", "广东省"), ("b", "浙江省"), ("c", "广东省"), ("d", None),
                         ("e", "浙江省")):  # fmt: skip
        ids[name] = rows.customer(start, region=region, lifecycle_stage="active")

    def ship(name: str, who: str, created: Any, fee: int, **kw: Any) -> None:
        ids[name] = rows.shipment(ids[who], created, fee, **kw)

    ship("s1", "a", local(2026, 4, 10, 10), 1000, origin_province="广东省",
         dest_province="浙江省", promised_at=local(2026, 4, 12, 10),
         delivered_at=local(2026, 4, 11, 15))  # fmt: skip
    ship("s2", "a", local(2026, 5, 5, 10), 2000, origin_province="广东省",
         dest_province="北京市", promised_at=local(2026, 5, 7, 18),
         delivered_at=local(2026, 5, 8, 9), is_damaged=True)  # fmt: skip
    ship("s3", "a", local(2026, 5, 20, 10), 3000, service_type="express",
         origin_province="广东省", dest_province="浙江省", promised_at=local(2026, 5, 21, 18),
         delivered_at=local(2026, 5, 21, 12))  # fmt: skip
    ship("s4", "a", local(2026, 6, 10, 10), 1500, origin_province="广东省",
         dest_province="浙江省", promised_at=local(2026, 6, 12, 10), status="lost",
         is_lost=True)  # fmt: skip
    ship("s5", "b", local(2026, 1, 15, 9), 500, origin_province="浙江省",
         dest_province="广东省", promised_at=local(2026, 1, 17, 9),
         delivered_at=local(2026, 1, 16, 9))  # fmt: skip
    ship("s6", "b", local(2026, 5, 12, 9), 800, origin_province="浙江省",
         dest_province="广东省", promised_at=local(2026, 5, 14, 9),
         delivered_at=local(2026, 6, 1, 0, 30))  # fmt: skip
    ship("s7", "c", local(2026, 3, 1, 8), 1200, service_type="express",
         origin_province="广东省", dest_province="上海市", promised_at=local(2026, 3, 2, 18),
         delivered_at=local(2026, 3, 2, 10))  # fmt: skip
    ship("s8", "d", local(2026, 6, 2, 14), 700, origin_province="江苏省",
         dest_province="江苏省", delivered_at=local(2026, 6, 3, 9))  # fmt: skip
    ship("s9", "d", local(2026, 6, 3, 0, 30), 900, origin_province="江苏省",
         dest_province="浙江省", promised_at=local(2026, 6, 4, 0),
         delivered_at=local(2026, 6, 3, 20))  # fmt: skip
    ship("s10", "a", local(2026, 6, 30, 13), 99_999, origin_province="广东省",
         dest_province="浙江省")  # fmt: skip

    def waybill(name: str) -> str:
        return f"GXT{ids[name]:09d}"

    ids["t1"] = rows.ticket(ids["a"], local(2026, 5, 8, 10), waybill_no=waybill("s2"),
                            region="北京市", first_response_at=local(2026, 5, 8, 10, 30),
                            resolved_at=local(2026, 5, 9, 10), satisfaction=5)  # fmt: skip
    ids["t2"] = rows.ticket(ids["b"], local(2026, 6, 1, 9), waybill_no=waybill("s6"),
                            region="广东省", first_response_at=local(2026, 6, 1, 11),
                            resolved_at=local(2026, 6, 3, 9), reopened=1,
                            satisfaction=2)  # fmt: skip
    rows.breach(ids["t2"], local(2026, 6, 2, 9))
    ids["t3"] = rows.ticket(ids["d"], local(2026, 6, 5, 10), type="inquiry", region="江苏省",
                            first_response_at=local(2026, 6, 5, 10, 10),
                            resolved_at=local(2026, 6, 5, 12), status="resolved")  # fmt: skip
    ids["t4"] = rows.ticket(ids["a"], local(2026, 6, 20, 10), waybill_no=waybill("s4"),
                            region="浙江省", status="new")  # fmt: skip
    ids["t5"] = rows.ticket(ids["d"], local(2026, 6, 30, 11), waybill_no=waybill("s9"),
                            region="浙江省", first_response_at=local(2026, 6, 30, 12, 30),
                            status="in_progress")  # fmt: skip

    ids["c1"] = rows.claim(ids["a"], ids["s2"], local(2026, 5, 9), status="paid",
                           approved_fen=1500, decided_at=local(2026, 5, 10, 10),
                           paid_at=local(2026, 5, 11, 10))  # fmt: skip
    ids["c2"] = rows.claim(ids["a"], ids["s4"], local(2026, 6, 14), status="approved",
                           approved_fen=1500, decided_at=local(2026, 6, 15, 10))  # fmt: skip
    ids["c3"] = rows.claim(ids["b"], ids["s6"], local(2026, 6, 1), status="rejected",
                           decided_at=local(2026, 6, 2, 10))  # fmt: skip
    ids["c4"] = rows.claim(ids["d"], ids["s9"], local(2026, 6, 29))
    return ids


# (metric, period, start, dimension, member) -> (value, numerator, denominator)
Key = tuple[str, str, date, str, str]
Figures = tuple[float | None, float | None, float | None]
T = 10_000 / 3

EXPECTED: dict[Key, Figures] = {
    # ---- June 2026, everything. Active A (s4) and D (s8, s9); D is new and repeats; of
    # May's actives (A, B) only A is back. Nobody reached 90 quiet days in June.
    ("active_customers", "month", JUNE, "all", ""): (2, 2, None),
    ("new_customers", "month", JUNE, "all", ""): (1, 1, None),
    ("lost_customers", "month", JUNE, "all", ""): (0, 0, None),
    ("repeat_rate", "month", JUNE, "all", ""): (0.5, 1, 2),
    ("retention_rate", "month", JUNE, "all", ""): (0.5, 1, 2),
    ("churn_rate", "month", JUNE, "all", ""): (0.5, 1, 2),
    # s4, s8, s9 (s10 is after the cut-off); s4 lost.
    ("shipments", "month", JUNE, "all", ""): (3, 3, None),
    ("revenue_fen", "month", JUNE, "all", ""): (3100, 3100, 3),
    ("damage_rate", "month", JUNE, "all", ""): (0.0, 0, 3),
    ("loss_rate", "month", JUNE, "all", ""): (1 / 3, 1, 3),
    # Delivered in June (local) with a promise: s6 (06-01 00:30, late), s9 (on time).
    ("on_time_rate", "month", JUNE, "all", ""): (0.5, 1, 2),
    # Opened in June: t2, t3, t4, t5; complaints t2, t4, t5 over 3 shipments.
    ("tickets", "month", JUNE, "all", ""): (4, 4, None),
    ("complaints", "month", JUNE, "all", ""): (3, 3, None),
    ("complaints_per_10k", "month", JUNE, "all", ""): (10_000, 3, 3),
    # First responses before the cut-off: t2 120 min, t3 10 min (t5's came after it).
    ("first_response_mean_min", "month", JUNE, "all", ""): (65, 130, 2),
    ("first_response_median_min", "month", JUNE, "all", ""): (65, None, 2),
    # Resolved in June: t2 (48 h, breached, reopened, CSAT 2), t3 (2 h).
    ("resolution_mean_h", "month", JUNE, "all", ""): (25, 50, 2),
    ("resolution_median_h", "month", JUNE, "all", ""): (25, None, 2),
    ("sla_attainment", "month", JUNE, "all", ""): (0.5, 1, 2),
    ("reopen_rate", "month", JUNE, "all", ""): (0.5, 1, 2),
    ("csat", "month", JUNE, "all", ""): (2.0, 2, 1),
    ("claim_cost_fen", "month", JUNE, "all", ""): (1500, 1500, 1),
    # ---- May 2026, everything. Active A (s2, s3: repeat) and B; April's only active (A)
    # stayed; C's 90th quiet day (05-30) fell in May.
    ("active_customers", "month", MAY, "all", ""): (2, 2, None),
    ("new_customers", "month", MAY, "all", ""): (0, 0, None),
    ("lost_customers", "month", MAY, "all", ""): (1, 1, None),
    ("repeat_rate", "month", MAY, "all", ""): (0.5, 1, 2),
    ("retention_rate", "month", MAY, "all", ""): (1.0, 1, 1),
    ("churn_rate", "month", MAY, "all", ""): (0.0, 0, 1),
    ("shipments", "month", MAY, "all", ""): (3, 3, None),
    ("revenue_fen", "month", MAY, "all", ""): (5800, 5800, 3),
    ("damage_rate", "month", MAY, "all", ""): (1 / 3, 1, 3),
    ("loss_rate", "month", MAY, "all", ""): (0.0, 0, 3),
    ("on_time_rate", "month", MAY, "all", ""): (0.5, 1, 2),
    ("tickets", "month", MAY, "all", ""): (1, 1, None),
    ("complaints", "month", MAY, "all", ""): (1, 1, None),
    ("complaints_per_10k", "month", MAY, "all", ""): (T, 1, 3),
    ("first_response_mean_min", "month", MAY, "all", ""): (30, 30, 1),
    ("first_response_median_min", "month", MAY, "all", ""): (30, None, 1),
    ("resolution_mean_h", "month", MAY, "all", ""): (24, 24, 1),
    ("resolution_median_h", "month", MAY, "all", ""): (24, None, 1),
    ("sla_attainment", "month", MAY, "all", ""): (1.0, 1, 1),
    ("reopen_rate", "month", MAY, "all", ""): (0.0, 0, 1),
    ("csat", "month", MAY, "all", ""): (5.0, 5, 1),
    ("claim_cost_fen", "month", MAY, "all", ""): (1500, 1500, 1),
    # ---- April: A's first shipment; B's 90th quiet day (04-15), back only on 05-12.
    ("active_customers", "month", date(2026, 4, 1), "all", ""): (1, 1, None),
    ("new_customers", "month", date(2026, 4, 1), "all", ""): (1, 1, None),
    ("lost_customers", "month", date(2026, 4, 1), "all", ""): (1, 1, None),
    # ---- The second quarter: A, B, D active (A 4 and D 2 shipments: repeat); of Q1's B
    # and C only B is back; B came back within the quarter, so only C is lost.
    ("active_customers", "quarter", Q2, "all", ""): (3, 3, None),
    ("new_customers", "quarter", Q2, "all", ""): (2, 2, None),
    ("lost_customers", "quarter", Q2, "all", ""): (1, 1, None),
    ("repeat_rate", "quarter", Q2, "all", ""): (2 / 3, 2, 3),
    ("retention_rate", "quarter", Q2, "all", ""): (0.5, 1, 2),
    ("churn_rate", "quarter", Q2, "all", ""): (0.5, 1, 2),
    ("shipments", "quarter", Q2, "all", ""): (7, 7, None),
    ("revenue_fen", "quarter", Q2, "all", ""): (9900, 9900, 7),
    # ---- 2026 so far: every shipper is new; C lost; no 2025 to compare with.
    ("active_customers", "year", Y2026, "all", ""): (4, 4, None),
    ("new_customers", "year", Y2026, "all", ""): (4, 4, None),
    ("lost_customers", "year", Y2026, "all", ""): (1, 1, None),
    ("repeat_rate", "year", Y2026, "all", ""): (0.75, 3, 4),
    ("shipments", "year", Y2026, "all", ""): (9, 9, None),
    ("revenue_fen", "year", Y2026, "all", ""): (11_600, 11_600, 9),
    # ---- Weeks and days (local): D's week; B and C lost on their 90th days.
    ("active_customers", "week", date(2026, 6, 1), "all", ""): (1, 1, None),
    ("repeat_rate", "week", date(2026, 6, 1), "all", ""): (1.0, 1, 1),
    ("new_customers", "week", date(2026, 6, 1), "all", ""): (1, 1, None),
    ("lost_customers", "week", date(2026, 4, 13), "all", ""): (1, 1, None),
    ("lost_customers", "week", date(2026, 5, 25), "all", ""): (1, 1, None),
    # s9 is 06-03 00:30 in Beijing (06-02 in UTC): D active on both days, new on the 2nd.
    ("active_customers", "day", date(2026, 6, 3), "all", ""): (1, 1, None),
    ("retention_rate", "day", date(2026, 6, 3), "all", ""): (1.0, 1, 1),
    ("new_customers", "day", date(2026, 6, 2), "all", ""): (1, 1, None),
    ("shipments", "day", date(2026, 6, 3), "all", ""): (1, 1, None),
    ("lost_customers", "day", date(2026, 4, 15), "all", ""): (1, 1, None),
    # ---- June by region: customers by their own region (D has none), shipments by
    # origin, tickets by their region, complaint rates over shipments *to* the region.
    ("active_customers", "month", JUNE, "region", "广东省"): (1, 1, None),
    ("retention_rate", "month", JUNE, "region", "广东省"): (1.0, 1, 1),
    ("active_customers", "month", JUNE, "region", "浙江省"): (0, 0, None),
    ("repeat_rate", "month", JUNE, "region", "浙江省"): (None, 0, 0),
    ("churn_rate", "month", JUNE, "region", "浙江省"): (1.0, 1, 1),
    ("shipments", "month", JUNE, "region", "广东省"): (1, 1, None),
    ("loss_rate", "month", JUNE, "region", "广东省"): (1.0, 1, 1),
    ("shipments", "month", JUNE, "region", "江苏省"): (2, 2, None),
    ("revenue_fen", "month", JUNE, "region", "江苏省"): (1600, 1600, 2),
    ("on_time_rate", "month", JUNE, "region", "浙江省"): (0.0, 0, 1),
    ("on_time_rate", "month", JUNE, "region", "江苏省"): (1.0, 1, 1),
    ("complaints", "month", JUNE, "region", "浙江省"): (2, 2, None),
    ("complaints_per_10k", "month", JUNE, "region", "浙江省"): (10_000, 2, 2),
    ("complaints_per_10k", "month", JUNE, "region", "广东省"): (None, 1, 0),
    ("complaints_per_10k", "month", JUNE, "region", "江苏省"): (0.0, 0, 1),
    ("sla_attainment", "month", JUNE, "region", "广东省"): (0.0, 0, 1),
    ("claim_cost_fen", "month", JUNE, "region", "广东省"): (1500, 1500, 1),
    ("lost_customers", "month", MAY, "region", "广东省"): (1, 1, None),
    # ---- Service types: a customer counts within the shipments of the type.
    ("active_customers", "month", JUNE, "service_type", "standard"): (2, 2, None),
    ("new_customers", "month", JUNE, "service_type", "standard"): (1, 1, None),
    ("retention_rate", "month", JUNE, "service_type", "standard"): (0.5, 1, 2),
    ("active_customers", "month", JUNE, "service_type", "express"): (0, 0, None),
    ("churn_rate", "month", JUNE, "service_type", "express"): (1.0, 1, 1),
    ("new_customers", "month", MAY, "service_type", "express"): (1, 1, None),
    ("lost_customers", "month", MAY, "service_type", "express"): (1, 1, None),
    ("shipments", "month", JUNE, "service_type", "standard"): (3, 3, None),
    ("complaints", "month", JUNE, "service_type", "standard"): (3, 3, None),
    ("complaints_per_10k", "month", JUNE, "service_type", "standard"): (10_000, 3, 3),
    # ---- RFM segments of the run.
    ("active_customers", "month", JUNE, "segment", "champions"): (1, 1, None),
    ("retention_rate", "month", JUNE, "segment", "champions"): (1.0, 1, 1),
    ("new_customers", "month", JUNE, "segment", "potential_loyalist"): (1, 1, None),
    ("repeat_rate", "month", JUNE, "segment", "potential_loyalist"): (1.0, 1, 1),
    ("churn_rate", "month", JUNE, "segment", "hibernating"): (1.0, 1, 1),
    ("tickets", "month", JUNE, "segment", "potential_loyalist"): (2, 2, None),
    ("csat", "month", JUNE, "segment", "hibernating"): (2.0, 2, 1),
    ("claim_cost_fen", "month", JUNE, "segment", "champions"): (1500, 1500, 1),
}

# Customers per class of the rfm run (period "asof", the cut-off's day).
CLASSES = {
    ("segment", "champions"): 1,
    ("segment", "hibernating"): 1,
    ("segment", "lost"): 1,
    ("segment", "potential_loyalist"): 1,
    ("segment", "prospect"): 1,
    ("value_tier", "high"): 1,
    ("value_tier", "medium"): 1,
    ("value_tier", "low"): 3,
    ("frequency_class", "low"): 5,
    ("relationship", "loyal"): 1,
    ("relationship", "at_risk"): 2,
    ("relationship", "potential"): 2,
}

# The rows behind some of the numbers: key -> (part, names of the ids listed).
DRILLS: dict[tuple[Key, str], set[str]] = {
    (("active_customers", "month", JUNE, "all", ""), "numerator"): {"a", "d"},
    (("new_customers", "month", JUNE, "all", ""), "numerator"): {"d"},
    (("lost_customers", "month", MAY, "all", ""), "numerator"): {"c"},
    (("lost_customers", "quarter", Q2, "all", ""), "numerator"): {"c"},
    (("lost_customers", "month", date(2026, 4, 1), "all", ""), "numerator"): {"b"},
    (("retention_rate", "month", JUNE, "all", ""), "numerator"): {"a"},
    (("retention_rate", "month", JUNE, "all", ""), "denominator"): {"a", "b"},
    (("churn_rate", "month", JUNE, "all", ""), "numerator"): {"b"},
    (("repeat_rate", "quarter", Q2, "all", ""), "numerator"): {"a", "d"},
    (("active_customers", "month", JUNE, "service_type", "standard"), "numerator"): {"a", "d"},
    (("new_customers", "month", MAY, "service_type", "express"), "numerator"): {"a"},
    (("active_customers", "month", JUNE, "region", "广东省"), "numerator"): {"a"},
    (("active_customers", "month", JUNE, "segment", "champions"), "numerator"): {"a"},
    (("active_customers", "day", date(2026, 6, 3), "all", ""), "numerator"): {"d"},
    (("shipments", "month", JUNE, "all", ""), "numerator"): {"s4", "s8", "s9"},
    (("loss_rate", "month", JUNE, "all", ""), "numerator"): {"s4"},
    (("damage_rate", "month", MAY, "all", ""), "numerator"): {"s2"},
    (("on_time_rate", "month", JUNE, "all", ""), "numerator"): {"s9"},
    (("on_time_rate", "month", JUNE, "all", ""), "denominator"): {"s6", "s9"},
    (("complaints_per_10k", "month", JUNE, "region", "浙江省"), "denominator"): {"s4", "s9"},
    (("shipments", "day", date(2026, 6, 3), "all", ""), "numerator"): {"s9"},
    (("complaints", "month", JUNE, "all", ""), "numerator"): {"t2", "t4", "t5"},
    (("first_response_mean_min", "month", JUNE, "all", ""), "denominator"): {"t2", "t3"},
    (("sla_attainment", "month", JUNE, "all", ""), "numerator"): {"t3"},
    (("sla_attainment", "month", JUNE, "all", ""), "denominator"): {"t2", "t3"},
    (("reopen_rate", "month", JUNE, "all", ""), "numerator"): {"t2"},
    (("csat", "month", JUNE, "all", ""), "numerator"): {"t2"},
    (("complaints", "month", JUNE, "service_type", "standard"), "numerator"): {"t2", "t4", "t5"},
    (("tickets", "month", JUNE, "segment", "potential_loyalist"), "numerator"): {"t3", "t5"},
    (("claim_cost_fen", "month", JUNE, "all", ""), "numerator"): {"c2"},
    (("claim_cost_fen", "month", MAY, "region", "广东省"), "numerator"): {"c1"},
}

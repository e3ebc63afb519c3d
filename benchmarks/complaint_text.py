"""Complaint text (issue #5 item 5): the category and priority suggester on a year of demo
tickets, beside the majority-class baseline of the same time split, with training time and
single-ticket suggestion latency; weekly terms and sentiment throughput alongside.

Tickets: ``--tickets`` (default 50,000) opened uniformly over 365 days, category codes from
a desk-like mix (delay most common), texts from ``guanxi.demo.texts``. Priority is derived
as the desk does (``tickets.desk`` default matrix: type x severity), with the severity read
from the text the way an agent would — a regulator or media threat, an angry customer, a
big amount or a lost / falsely signed parcel is major or critical — and then, for 15 % of
tickets, moved one step (agents judge differently), so it is learnable but noisy.

    python benchmarks/complaint_text.py                  # 50,000 tickets
    python benchmarks/complaint_text.py --tickets 5000   # a quick look
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks._common import percentile
from guanxi.analytics import text
from guanxi.demo.texts import complaint_texts
from guanxi.tickets.desk import DeskPolicy
from guanxi.tickets.enums import Severity, TicketChannel, TicketType

# Share of tickets per category code (a desk files most under a leaf, some under the
# parent); delay is the most common complaint.
MIX: dict[str, float] = {
    "delay": 0.04,
    "delay.transit": 0.17,
    "delay.delivery": 0.13,
    "damage": 0.02,
    "damage.package": 0.05,
    "damage.contents": 0.07,
    "loss": 0.01,
    "loss.whole": 0.05,
    "loss.partial": 0.03,
    "delivery": 0.02,
    "delivery.wrong": 0.04,
    "delivery.fake_sign": 0.05,
    "delivery.not_to_door": 0.05,
    "pickup": 0.01,
    "pickup.missed": 0.04,
    "service_attitude": 0.08,
    "price": 0.03,
    "price.overcharge": 0.03,
    "product_quality": 0.03,
    "other": 0.05,
}
SEVERITY_NOISE = 0.15
PLANTED_WEEK = 40
PLANTED_TEXT = "听说是台风停运了。"
_AMOUNT = re.compile(r"(\d+)元")
_REGULATOR = ("邮政管理局", "12305")
_MEDIA = ("微博", "媒体", "曝光")


def ticket_type(code: str, u: float) -> TicketType:
    """The type an agent files a ticket of this category under."""
    top = code.split(".", 1)[0]
    if top in ("loss", "damage") and u < 0.4:
        return TicketType.claim
    if top == "pickup":
        return TicketType.service_request
    if code in ("price", "other"):
        return TicketType.inquiry
    return TicketType.complaint


def severity(code: str, subject: str, description: str) -> Severity:
    """Severity as an agent reads it from the text (before the agents' disagreement)."""
    whole = subject + description
    amounts = [int(a) for a in _AMOUNT.findall(whole)]
    amount = max(amounts, default=0)
    if any(w in whole for w in _REGULATOR) or (amount >= 5000 and code.startswith("loss")):
        return Severity.critical
    # 1,000 yuan is the desk's default major amount (DeskPolicy.major_amount_fen).
    if (
        any(w in whole for w in _MEDIA)
        or "！" in whole
        or amount >= 1000
        or code in ("loss.whole", "delivery.fake_sign")
    ):
        return Severity.major
    return Severity.minor


def tickets(n: int, seed: int) -> tuple[list[str], list[str], list[datetime], list[str]]:
    """(texts, top-level categories, opened-at times, priorities) of ``n`` demo tickets."""
    rng = np.random.default_rng(seed)
    codes = list(MIX)
    weights = np.array([MIX[c] for c in codes])
    picked = rng.choice(len(codes), size=n, p=weights / weights.sum())
    categories = [codes[i] for i in picked]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    seconds = np.sort(rng.integers(0, 365 * 86400, size=n))
    times = [start + timedelta(seconds=int(s)) for s in seconds]
    pairs = complaint_texts(categories, rng)
    policy = DeskPolicy()
    levels = [Severity.minor, Severity.major, Severity.critical]
    u = rng.random((n, 3))
    priorities = []
    for i, (code, (subject, description)) in enumerate(zip(categories, pairs, strict=True)):
        sev = severity(code, subject, description)
        if u[i, 0] < SEVERITY_NOISE:
            step = -1 if u[i, 1] < 0.5 else 1
            sev = levels[min(2, max(0, levels.index(sev) + step))]
        priorities.append(
            policy.priority(ticket_type(code, u[i, 2]), sev, TicketChannel.hotline).value
        )
    texts = [text.ticket_text(s, d) for s, d in pairs]
    # A typhoon in one week: a third of that week's delay tickets mention it (the
    # emerging-topics check must find it, and nothing in the other weeks).
    storm = text.iso_week(start + timedelta(weeks=PLANTED_WEEK))
    for i, (code, moment) in enumerate(zip(categories, times, strict=True)):
        if code.startswith("delay") and text.iso_week(moment) == storm and u[i, 1] < 1 / 3:
            texts[i] += PLANTED_TEXT
    return texts, [text.top_level(c) for c in categories], times, priorities


def main() -> None:
    """Generate, train, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-samples", type=int, default=2000)
    args = parser.parse_args()

    started = time.perf_counter()
    texts, labels, times, priorities = tickets(args.tickets, args.seed)
    print(f"generated {len(texts):,} ticket texts in {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    text.tokenizer()
    print(f"jieba tokenizer with logistics vocabulary: {time.perf_counter() - started:.2f}s")

    sample_texts = texts[:10_000]
    started = time.perf_counter()
    for t in sample_texts:
        text.terms(t)
    seg_s = time.perf_counter() - started
    chars = sum(len(t) for t in sample_texts)
    print(
        f"segmentation (jieba + vocabulary + stop words): {len(sample_texts) / seg_s:,.0f} "
        f"texts/s, {chars / seg_s / 1000:,.0f}k chars/s (avg {chars / len(sample_texts):.0f} chars)"
    )

    started = time.perf_counter()
    model = text.train(texts, labels, times, priorities=priorities)
    train_s = time.perf_counter() - started
    print(f"train (held-out fit + refit on all {len(texts):,}): {train_s:.1f}s")
    for name, m in model.metrics.items():
        print(
            f"{name:9s} train {m.n_train:,} / test {m.n_test:,} (from {m.cutoff[:10]}): "
            f"accuracy {m.accuracy:.3f}  macro-F1 {m.macro_f1:.3f}   | majority baseline "
            f"'{m.baseline_label}': accuracy {m.baseline_accuracy:.3f}  macro-F1 "
            f"{m.baseline_macro_f1:.3f}"
        )

    blob = model.to_bytes()
    started = time.perf_counter()
    loaded = text.TextModel.from_bytes(blob)
    print(f"model bytes: {len(blob) / 1e6:.1f} MB, load {time.perf_counter() - started:.2f}s")

    rng = np.random.default_rng(args.seed + 1)
    sample = rng.choice(len(texts), size=min(args.latency_samples, len(texts)), replace=False)
    loaded.suggest(*texts[int(sample[0])].split("\n", 1))  # warm-up
    latencies = []
    for i in sample:
        subject, _, description = texts[int(i)].partition("\n")
        t0 = time.perf_counter()
        loaded.suggest_all(subject, description)
        latencies.append(time.perf_counter() - t0)
    print(
        f"suggest_all (top-3 categories + priority), one ticket: p50 {statistics.median(latencies) * 1000:.2f} ms"
        f"  p95 {percentile(latencies, 95) * 1000:.2f} ms  (n={len(latencies)})"
    )

    started = time.perf_counter()
    weekly = text.WeeklyTerms.build(texts, times)
    build_s = time.perf_counter() - started
    storm = text.iso_week(times[0] + timedelta(weeks=PLANTED_WEEK))
    found = {w: weekly.emerging(w) for w in weekly.weeks}
    elsewhere = sum(len(v) for w, v in found.items() if w != storm)
    print(
        f"weekly terms over {len(weekly.weeks)} weeks: {build_s:.1f}s; {storm} top: "
        + ", ".join(f"{t} {c}" for t, c in weekly.top(storm, 6))
    )
    print(
        f"emerging in the planted week {storm}: "
        + ", ".join(
            f"{e.term} (x{e.ratio:.1f}, {e.count} tickets, z {e.z:.1f})" for e in found[storm]
        )
        + f"; emerging terms in the other {len(weekly.weeks) - 1} weeks: {elsewhere}"
    )
    started = time.perf_counter()
    labels_seen = [text.sentiment(t).label for t in texts[:10_000]]
    per_s = len(labels_seen) / (time.perf_counter() - started)
    shares = {lab.value: labels_seen.count(lab) / len(labels_seen) for lab in text.SentimentLabel}
    print(
        f"sentiment: {per_s:,.0f} texts/s; " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
    )


if __name__ == "__main__":
    main()

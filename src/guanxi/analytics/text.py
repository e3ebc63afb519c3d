"""Complaint text: segmentation, a category / priority suggester, weekly terms and emerging
topics, and a lexicon sentiment score — for ticket subjects and descriptions in Chinese.

* **Segmentation** is jieba with the logistics vocabulary shipped in ``data/`` (运单, 快递员,
  虚假签收, 代收货款 ...) on a private :class:`jieba.Tokenizer`, built once per process.
  jieba's prefix-dictionary cache goes to an owner-only directory under the system temp
  dir, and its logger is kept at WARNING so nothing is printed while serving.
* **Suggestions**: TF-IDF over jieba words (unigrams and bigrams, stop words out, amounts
  reduced to their number of digits), then a multinomial logistic regression — one for the
  category, one for the priority. :func:`train` measures both on a time split (older
  tickets train, newer test) beside a majority-class baseline, then refits on everything.
* **Terms**: per ISO week, the terms in most tickets, and the terms whose share of
  tickets rose well above their share in the weeks before (emerging topics).
* **Sentiment**: a lexicon score in [-1, 1]; a negator (不, 没, 没有 ...) flips the next
  sentiment word, an intensifier (非常, 太, 特别 ...) strengthens it.

No database code here: callers pass texts, labels and times (the analytics run reads the
ticket table; the ticket form asks :meth:`TextModel.suggest`). Nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import stat
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import jieba
import joblib
import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_

__all__ = [
    "EmergingTerm",
    "Metrics",
    "Sentiment",
    "SentimentLabel",
    "TextModel",
    "WeeklyTerms",
    "emerging_topics",
    "iso_week",
    "segment",
    "sentiment",
    "terms",
    "ticket_text",
    "tokenizer",
    "top_level",
    "top_terms",
    "train",
]

# Bumped when the pickled layout of TextModel changes; older bytes are refused.
MODEL_VERSION = 1
_MAGIC = b"GXTEXT\n"

# Fewer labelled tickets than this cannot give a meaningful held-out measurement.
MIN_TICKETS = 20

# ---------------------------------------------------------------------------- resources


def _data_lines(name: str) -> list[str]:
    """Non-empty, non-comment lines of a file in ``analytics/data``."""
    text = resources.files("guanxi.analytics").joinpath("data", name).read_text("utf-8")
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


@cache
def domain_terms() -> tuple[str, ...]:
    """The logistics vocabulary added to jieba's dictionary."""
    return tuple(line.split()[0] for line in _data_lines("logistics_dict.txt"))


@cache
def stop_words() -> frozenset[str]:
    """Words dropped before classification and term counts."""
    return frozenset(_data_lines("stopwords.txt"))


@cache
def lexicon() -> dict[str, float]:
    """Sentiment word -> score in [-1, 1]."""
    out = {}
    for line in _data_lines("sentiment.txt"):
        word, score = line.split("\t")
        out[word] = float(score)
    return out


def _cache_dir() -> str:
    """An owner-only directory for jieba's prefix-dictionary cache.

    jieba writes ``jieba.cache`` (a marshal dump it loads back without checks) to the temp
    dir by default; a shared, world-writable place would let another user plant it. We use
    ``<tmp>/guanxi-jieba-<uid>`` when it is ours and private, else a fresh private dir.
    """
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = os.path.join(tempfile.gettempdir(), f"guanxi-jieba-{uid if uid is not None else 0}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
        private = stat.S_ISDIR(info.st_mode) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if private and (uid is None or info.st_uid == uid) and os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="guanxi-jieba-")


_TOKENIZER: jieba.Tokenizer | None = None
_TOKENIZER_LOCK = threading.Lock()


def tokenizer() -> jieba.Tokenizer:
    """The process's jieba tokenizer with the logistics and sentiment words (built once,
    about half a second with a warm cache)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        with _TOKENIZER_LOCK:
            if _TOKENIZER is None:
                # jieba logs "Building prefix dict ..." at DEBUG to stderr by default.
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tok = jieba.Tokenizer()
                tok.tmp_dir = _cache_dir()
                tok.initialize()
                for word in (*domain_terms(), *lexicon()):
                    tok.add_word(word)
                _TOKENIZER = tok
    return _TOKENIZER


# ---------------------------------------------------------------------------- tokens

_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_WORDLIKE = re.compile(r"\w", re.UNICODE)
_EXCLAIM = "!"


def segment(text: str) -> list[str]:
    """jieba's tokens of ``text`` (whitespace dropped, nothing else)."""
    return [t for t in tokenizer().cut(text) if t.strip()]


def terms(text: str) -> list[str]:
    """Tokens for classification and counting: lower-cased, stop words and punctuation
    dropped, numbers reduced to their size (``<num3>`` for 100-999: the amount at stake
    matters, not its digits), exclamation marks kept as ``!`` (anger signals urgency)."""
    stops = stop_words()
    out: list[str] = []
    for raw in tokenizer().cut(text):
        tok = raw.strip().lower()
        if not tok:
            continue
        if tok in ("!", "！"):
            out.append(_EXCLAIM)
        elif _NUMBER.match(tok):
            out.append(f"<num{len(tok.split('.')[0])}>")
        elif _WORDLIKE.search(tok) and tok not in stops:
            out.append(tok)
    return out


def ticket_text(subject: str | None, description: str | None) -> str:
    """The one text a ticket is analysed as (subject, then description)."""
    return f"{subject or ''}\n{description or ''}".strip()


def top_level(code: str) -> str:
    """The top-level category of a code of the default tree (``delay.transit`` ->
    ``delay``)."""
    return code.split(".", 1)[0]


# ---------------------------------------------------------------------------- classifier


@dataclass(frozen=True)
class Metrics:
    """Held-out quality of one classifier beside the majority-class baseline."""

    n_train: int
    n_test: int
    cutoff: str  # first time in the test part (ISO 8601)
    accuracy: float
    macro_f1: float
    baseline_label: str
    baseline_accuracy: float
    baseline_macro_f1: float
    labels: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the results table)."""
        out = asdict(self)
        out["labels"] = list(self.labels)
        return out


def _ngrams(tokens: list[str]) -> list[str]:
    """Word unigrams and bigrams (module-level so the vectoriser pickles)."""
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def _vectoriser() -> TfidfVectorizer:
    # Character n-grams were tried beside the words: no gain on the demo benchmark at
    # twice the features, so words (with bigrams: 没 收到, 不 送上门) alone.
    return TfidfVectorizer(analyzer=_ngrams, min_df=2, sublinear_tf=True, dtype=np.float64)


def _classifier() -> LogisticRegression:
    # lbfgs is deterministic (no random state involved) and gives calibrated-enough
    # probabilities for a top-3 list; C chosen on the demo benchmark.
    return LogisticRegression(C=4.0, max_iter=1000)


@dataclass
class TextModel:
    """A trained suggester: the vectoriser, the category and (optional) priority
    classifiers, and the held-out metrics they were measured with."""

    words: TfidfVectorizer
    category: LogisticRegression
    priority: LogisticRegression | None
    metrics: dict[str, Metrics] = field(default_factory=dict)
    trained_at: str = ""

    def _features(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.words.transform([terms(t) for t in texts])

    @staticmethod
    def _top(model: LogisticRegression, x: sp.csr_matrix, k: int) -> list[tuple[str, float]]:
        proba = model.predict_proba(x)[0]
        # Ties broken by label so the list is stable.
        order = sorted(range(len(proba)), key=lambda i: (-proba[i], str(model.classes_[i])))
        return [(str(model.classes_[i]), float(proba[i])) for i in order[:k]]

    def suggest(
        self, subject: str | None, description: str | None, k: int = 3
    ) -> list[tuple[str, float]]:
        """The ``k`` most likely categories with their probabilities, best first."""
        return self._top(self.category, self._features([ticket_text(subject, description)]), k)

    def suggest_priority(
        self, subject: str | None, description: str | None, k: int = 1
    ) -> list[tuple[str, float]]:
        """The ``k`` most likely priorities (empty when trained without priorities)."""
        if self.priority is None:
            return []
        return self._top(self.priority, self._features([ticket_text(subject, description)]), k)

    def suggest_all(
        self, subject: str | None, description: str | None, k: int = 3
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(top ``k`` categories, top priority) for the ticket form, segmenting once."""
        x = self._features([ticket_text(subject, description)])
        priority = [] if self.priority is None else self._top(self.priority, x, 1)
        return self._top(self.category, x, k), priority

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most likely category of each text."""
        return [str(c) for c in self.category.predict(self._features(texts))]

    def to_bytes(self) -> bytes:
        """A self-describing blob: magic, a JSON header (format and scikit-learn version),
        then the joblib dump. Only load blobs this application wrote (pickle)."""
        header = json.dumps({"version": MODEL_VERSION, "sklearn": sklearn.__version__})
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return _MAGIC + header.encode() + b"\n" + buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TextModel:
        """Load :meth:`to_bytes` output; refuses other formats and models pickled by
        another model version or scikit-learn minor version (retrain instead)."""
        error = ValidationFailed(
            [
                FieldError(
                    ("model",),
                    "text_model_version",
                    N_("The stored text model is from another version; run the analytics again"),
                )
            ]
        )
        if not data.startswith(_MAGIC):
            raise error
        head, _, payload = data[len(_MAGIC) :].partition(b"\n")
        try:
            meta = json.loads(head)
        except ValueError:
            raise error from None
        if meta.get("version") != MODEL_VERSION or _minor(meta.get("sklearn", "")) != _minor(
            sklearn.__version__
        ):
            raise error
        model = joblib.load(io.BytesIO(payload))
        if not isinstance(model, cls):
            raise error
        return model


def _minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def _measure(
    y_train: np.ndarray, y_test: np.ndarray, predicted: np.ndarray, cutoff: str
) -> Metrics:
    values, counts = np.unique(y_train, return_counts=True)
    # Majority label of the training part; ties to the first label in sort order.
    majority = str(values[int(np.argmax(counts))])
    baseline = np.full(len(y_test), majority, dtype=object)
    labels = sorted({str(v) for v in y_train} | {str(v) for v in y_test})
    return Metrics(
        n_train=len(y_train),
        n_test=len(y_test),
        cutoff=cutoff,
        accuracy=float(accuracy_score(y_test, predicted)),
        macro_f1=float(f1_score(y_test, predicted, average="macro", zero_division=0)),
        baseline_label=majority,
        baseline_accuracy=float(accuracy_score(y_test, baseline)),
        baseline_macro_f1=float(f1_score(y_test, baseline, average="macro", zero_division=0)),
        labels=tuple(labels),
    )


def _invalid(loc: str, code: str, message: str, **params: Any) -> ValidationFailed:
    return ValidationFailed([FieldError((loc,), code, message, params)])


def _time_split(times: Sequence[date | datetime], test_fraction: float) -> tuple[int, Any]:
    """(number of training rows in time order, first test time): everything before the
    cut-off instant trains, the instant itself and later test — no ticket of the same
    moment on both sides."""
    order = sorted(range(len(times)), key=times.__getitem__)
    k = min(len(order) - 1, max(1, int(round(len(order) * (1 - test_fraction)))))
    cutoff = times[order[k]]
    n_train = sum(1 for t in times if t < cutoff)
    return n_train, cutoff


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    times: Sequence[date | datetime],
    *,
    priorities: Sequence[str | None] | None = None,
    test_fraction: float = 0.2,
    refit: bool = True,
    tokens: Sequence[list[str]] | None = None,
) -> TextModel:
    """Train the category (and, given ``priorities``, the priority) suggester.

    ``texts`` are :func:`ticket_text` of each ticket, ``labels`` its category as the desk
    filed it (the analytics run passes the top-level code), ``times`` when it was opened.
    The newest ``test_fraction`` of tickets (by time) is held out to measure accuracy and
    macro-F1 beside the majority-class baseline (``model.metrics['category' |
    'priority']``); with ``refit`` the returned model is then refitted on all tickets,
    since the newest are the most like tomorrow's. ``tokens``, if given, are the texts'
    :func:`terms` (segmentation is most of the cost: the analytics run segments once for
    training and weekly terms). Deterministic for the same input.
    """
    # lbfgs makes hundreds of small BLAS calls; OpenBLAS threads spinning on them cost
    # 15x the single-threaded time on a busy two-core machine (measured: 26 s vs 1.7 s).
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(
            texts,
            labels,
            times,
            priorities=priorities,
            test_fraction=test_fraction,
            refit=refit,
            tokens=tokens,
        )


def _train(
    texts: Sequence[str],
    labels: Sequence[str],
    times: Sequence[date | datetime],
    *,
    priorities: Sequence[str | None] | None = None,
    test_fraction: float = 0.2,
    refit: bool = True,
    tokens: Sequence[list[str]] | None = None,
) -> TextModel:
    n = len(texts)
    if (
        len(labels) != n
        or len(times) != n
        or (priorities is not None and len(priorities) != n)
        or (tokens is not None and len(tokens) != n)
    ):
        raise _invalid("labels", "length_mismatch", N_("Texts, labels and times differ in length"))
    if n < MIN_TICKETS:
        raise _invalid(
            "texts",
            "too_few",
            N_("At least {minimum} tickets are needed to train the text model"),
            minimum=MIN_TICKETS,
        )
    if not 0 < test_fraction < 1:
        raise _invalid("test_fraction", "range", N_("The test fraction must be between 0 and 1"))
    if len(set(labels)) < 2:
        raise _invalid("labels", "one_class", N_("The tickets need at least two categories"))

    order = sorted(range(n), key=times.__getitem__)
    tokens_o = [list(tokens[i]) if tokens is not None else terms(texts[i]) for i in order]
    y = np.array([str(labels[i]) for i in order], dtype=object)
    n_train, cutoff = _time_split([times[i] for i in order], test_fraction)
    cutoff_iso = cutoff.isoformat()
    if len(set(y[:n_train])) < 2:
        raise _invalid("labels", "one_class", N_("The tickets need at least two categories"))

    prio: np.ndarray | None = None
    if priorities is not None:
        prio = np.array([priorities[i] for i in order], dtype=object)

    metrics: dict[str, Metrics] = {}
    words = _vectoriser()
    x_train = words.fit_transform(tokens_o[:n_train])
    x_test = words.transform(tokens_o[n_train:])
    category = _classifier().fit(x_train, y[:n_train])
    metrics["category"] = _measure(y[:n_train], y[n_train:], category.predict(x_test), cutoff_iso)
    priority: LogisticRegression | None = None
    if prio is not None:
        known = np.array([p is not None for p in prio])
        tr, te = known[:n_train], known[n_train:]
        if len({str(p) for p in prio[:n_train][tr]}) >= 2 and te.any():
            priority = _classifier().fit(x_train[tr], prio[:n_train][tr].astype(str))
            metrics["priority"] = _measure(
                prio[:n_train][tr].astype(str),
                prio[n_train:][te].astype(str),
                priority.predict(x_test[te]),
                cutoff_iso,
            )
    if refit:
        words = _vectoriser()
        x_all = words.fit_transform(tokens_o)
        category = _classifier().fit(x_all, y)
        if priority is not None and prio is not None:
            known = np.array([p is not None for p in prio])
            priority = _classifier().fit(x_all[known], prio[known].astype(str))
    last = times[order[-1]]
    return TextModel(
        words=words,
        category=category,
        priority=priority,
        metrics=metrics,
        trained_at=last.isoformat(),
    )


# ---------------------------------------------------------------------------- terms


def iso_week(moment: date | datetime | str) -> str:
    """The ISO week of a day as ``YYYY-Www`` (a ``YYYY-Www`` string is checked and
    returned)."""
    if isinstance(moment, str):
        match = re.fullmatch(r"(\d{4})-W(\d{2})", moment)
        if not match:
            raise _invalid("week", "format", N_("A week is written like 2026-W05"))
        try:
            date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError:
            raise _invalid("week", "format", N_("A week is written like 2026-W05")) from None
        return moment
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _monday(week: str) -> date:
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def _countable(term: str) -> bool:
    """Terms worth reporting: two characters or more, not a number or a mark."""
    return len(term) >= 2 and not term.startswith("<num")


@dataclass(frozen=True)
class EmergingTerm:
    """A term whose share of tickets rose this week."""

    term: str
    count: int  # tickets this week containing it
    share: float  # of this week's tickets
    previous_count: int  # tickets in the baseline weeks containing it
    previous_share: float  # of the baseline weeks' tickets
    ratio: float  # share / smoothed previous share
    z: float  # how unlikely the rise is by chance (standard deviations)


@dataclass
class WeeklyTerms:
    """Per ISO week: how many tickets, and in how many of them each term occurs (document
    frequency, so one verbose ticket does not make a topic)."""

    tickets: dict[str, int]
    counts: dict[str, Counter[str]]

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        times: Sequence[date | datetime],
        *,
        tokens: Sequence[list[str]] | None = None,
    ) -> WeeklyTerms:
        """Count terms per week over ``texts`` opened at ``times`` (``tokens``: their
        :func:`terms`, when the caller has them already)."""
        if len(texts) != len(times) or (tokens is not None and len(tokens) != len(texts)):
            raise _invalid("times", "length_mismatch", N_("Texts and times differ in length"))
        tickets: Counter[str] = Counter()
        counts: dict[str, Counter[str]] = {}
        for i, (text, moment) in enumerate(zip(texts, times, strict=True)):
            week = iso_week(moment)
            tickets[week] += 1
            words = tokens[i] if tokens is not None else terms(text)
            counts.setdefault(week, Counter()).update({t for t in words if _countable(t)})
        return cls(tickets=dict(tickets), counts=counts)

    @property
    def weeks(self) -> list[str]:
        """Weeks with tickets, oldest first."""
        return sorted(self.tickets)

    def top(self, week: date | datetime | str, k: int = 20) -> list[tuple[str, int]]:
        """The ``k`` terms in most tickets of ``week`` (ties by term)."""
        counts = self.counts.get(iso_week(week), Counter())
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def emerging(
        self,
        week: date | datetime | str,
        *,
        baseline_weeks: int = 4,
        min_count: int = 5,
        min_ratio: float = 2.0,
        min_z: float = 4.0,
        k: int = 20,
    ) -> list[EmergingTerm]:
        """Terms in at least ``min_count`` tickets of ``week`` whose share of tickets is at
        least ``min_ratio`` times their share over the ``baseline_weeks`` weeks before, by
        a margin chance does not explain.

        The ratio's previous share is smoothed, (count + 1) / (tickets + 1), so a term
        never seen before gets a finite ratio. The margin: given the term's tickets in
        both windows, those in this week are binomial with this week's share of all the
        tickets if nothing changed; ``z`` is the standardised excess and must reach
        ``min_z`` — a desk's vocabulary has thousands of terms, so a 3-sigma rise happens
        somewhere every week by chance. Without tickets in the baseline weeks nothing is
        emerging. Sorted by ratio, then count, then term.
        """
        key = iso_week(week)
        n_now = self.tickets.get(key, 0)
        monday = _monday(key)
        before = [iso_week(monday - timedelta(weeks=i)) for i in range(1, baseline_weeks + 1)]
        n_prev = sum(self.tickets.get(w, 0) for w in before)
        if n_now == 0 or n_prev == 0:
            return []
        prev: Counter[str] = Counter()
        for w in before:
            prev.update(self.counts.get(w, Counter()))
        p_now = n_now / (n_now + n_prev)
        out = []
        for term, count in self.counts[key].items():
            if count < min_count:
                continue
            share = count / n_now
            ratio = share / ((prev[term] + 1) / (n_prev + 1))
            both = count + prev[term]
            z = (count - both * p_now) / math.sqrt(both * p_now * (1 - p_now))
            if ratio >= min_ratio and z >= min_z:
                out.append(
                    EmergingTerm(term, count, share, prev[term], prev[term] / n_prev, ratio, z)
                )
        out.sort(key=lambda e: (-e.ratio, -e.count, e.term))
        return out[:k]


def top_terms(
    texts: Sequence[str], times: Sequence[date | datetime], week: date | datetime | str, k: int = 20
) -> list[tuple[str, int]]:
    """The ``k`` terms in most tickets of an ISO ``week`` (``2026-W05`` or any day in it),
    with their ticket counts. For many weeks build :class:`WeeklyTerms` once."""
    return WeeklyTerms.build(texts, times).top(week, k)


def emerging_topics(
    texts: Sequence[str],
    times: Sequence[date | datetime],
    week: date | datetime | str,
    *,
    baseline_weeks: int = 4,
    min_count: int = 5,
    min_ratio: float = 2.0,
    min_z: float = 4.0,
    k: int = 20,
) -> list[EmergingTerm]:
    """Terms whose share of tickets in ``week`` rose to ``min_ratio`` times or more their
    share over the previous ``baseline_weeks`` weeks, beyond chance (see
    :meth:`WeeklyTerms.emerging`)."""
    return WeeklyTerms.build(texts, times).emerging(
        week,
        baseline_weeks=baseline_weeks,
        min_count=min_count,
        min_ratio=min_ratio,
        min_z=min_z,
        k=k,
    )


# ---------------------------------------------------------------------------- sentiment


class SentimentLabel(StrEnum):
    """Tone of a ticket text."""

    negative = "negative"
    neutral = "neutral"
    positive = "positive"


SENTIMENT_LABELS = {
    "negative": N_("Negative"),
    "neutral": N_("Neutral"),
    "positive": N_("Positive"),
}

NEGATORS = frozenset({"不", "没", "没有", "未", "无", "别", "不是", "并不", "并没有", "毫不"})
INTENSIFIERS = {
    "非常": 1.8,
    "特别": 1.8,
    "极其": 2.0,
    "十分": 1.6,
    "太": 1.5,
    "很": 1.3,
    "挺": 1.2,
    "超": 1.5,
    "真": 1.3,
    "超级": 1.8,
    "实在": 1.4,
}
# Words that only count after an intensifier or a negator: 好 alone is 好几天 (many
# days), 约好 (agreed) or 好的 (OK); 快 alone is mostly 尽快 (as soon as possible).
MODIFIED_ONLY = {"好": 0.5, "快": 0.4}
# Punctuation that ends a negation's or an intensifier's reach.
_BREAKS = frozenset("，,。.！!？?；;：:、\n")
# Neutral band: |score| below this is neutral.
NEUTRAL_BAND = 0.25
_NEGATION_REACH = 3  # tokens


@dataclass(frozen=True)
class Sentiment:
    """A score in [-1, 1] and its label."""

    score: float
    label: SentimentLabel


# Longest first, so 没有 is peeled before 没.
_PREFIXES = (
    tuple(sorted(NEGATORS, key=lambda w: (-len(w), w))),
    tuple(sorted(INTENSIFIERS, key=lambda w: (-len(w), w))),
)


def _units(tokens: list[str]) -> list[str]:
    """Split jieba compounds the lexicon does not know into negator / intensifier / word
    (jieba keeps 不太好 or 没满意 as one token)."""
    lex = lexicon()
    out: list[str] = []
    for tok in tokens:
        if tok in lex or tok in NEGATORS or tok in INTENSIFIERS or len(tok) < 2:
            out.append(tok)
            continue
        parts: list[str] = []
        rest = tok
        for prefixes in _PREFIXES:
            for p in prefixes:
                if rest.startswith(p) and len(rest) > len(p):
                    parts.append(p)
                    rest = rest[len(p) :]
                    break
        known = rest in lex or rest in MODIFIED_ONLY
        out.extend([*parts, rest] if parts and known else [tok])
    return out


def sentiment(text: str) -> Sentiment:
    """Lexicon sentiment of a text.

    Each sentiment word adds its score; a negator within three tokens before it flips the
    sign; an intensifier before it multiplies it (after a negator it softens instead: 不太
    好 is mildly negative); exclamation marks add up to 30 %. The sum ``s`` is squashed to
    ``s / sqrt(s**2 + 1)``; within +-0.25 is neutral.
    """
    lex = lexicon()
    total = 0.0
    negate_until = -1
    boost = 1.0
    tokens = _units(segment(text))
    for i, tok in enumerate(tokens):
        if tok in _BREAKS:
            negate_until, boost = -1, 1.0
            continue
        if tok in NEGATORS:
            negate_until = i + _NEGATION_REACH
            continue
        if tok in INTENSIFIERS:
            boost = 0.75 if i <= negate_until else boost * INTENSIFIERS[tok]
            continue
        modified = boost != 1.0 or i <= negate_until
        if tok in lex or (modified and tok in MODIFIED_ONLY):
            value = lex.get(tok, MODIFIED_ONLY.get(tok, 0.0)) * boost
            if i <= negate_until:
                value = -value
            total += value
            negate_until, boost = -1, 1.0
    exclaims = min(3, text.count("!") + text.count("！"))
    total *= 1 + 0.1 * exclaims
    score = total / math.sqrt(total * total + 1)
    if score <= -NEUTRAL_BAND:
        label = SentimentLabel.negative
    elif score >= NEUTRAL_BAND:
        label = SentimentLabel.positive
    else:
        label = SentimentLabel.neutral
    return Sentiment(round(score, 6), label)

"""Name tokenisation for the search index: normalised character bigrams.

A name is NFKC-normalised and lower-cased, split into runs of letters/digits/CJK, and each
run yields its overlapping two-character pieces (a one-character run yields itself). A query
term is found when every one of its bigrams is among a name's tokens, then confirmed by a
substring check, so ``张三`` finds ``张三丰`` and ``物流`` finds ``杭州顺达物流有限公司``.
"""

from __future__ import annotations

import re
import unicodedata

_RUN = re.compile(r"[0-9a-z\u3400-\u9fff\uf900-\ufaff]+")


def normalise_name(text: str) -> str:
    """NFKC, lower case, collapse whitespace: the form names are compared in."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def name_tokens(name: str) -> set[str]:
    """The index tokens of one name."""
    tokens: set[str] = set()
    for run in _RUN.findall(normalise_name(name)):
        if len(run) == 1:
            tokens.add(run)
        else:
            tokens.update(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


def query_tokens(term: str) -> list[str]:
    """Tokens a name must all contain to possibly match ``term`` (empty: not searchable)."""
    runs = _RUN.findall(normalise_name(term))
    tokens: list[str] = []
    for run in runs:
        # One-character runs are left to the substring check: names index only bigrams of
        # longer runs, so a lone character is not a token they carry.
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return list(dict.fromkeys(tokens))

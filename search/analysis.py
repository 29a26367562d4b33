"""Chinese/English text analysis shared by indexing, querying and policy↔news linking.

Every piece of text goes through the same steps so that index-time and query-time tokens agree:

1. ``normalise``: NFKC (full-width letters, digits and punctuation become half-width), Latin lower-cased,
   whitespace runs collapsed to one space.
2. ``rjieba.cut`` (jieba-rs, jieba's dictionary; about ten times faster than pure-Python jieba).
3. Tokens made only of whitespace or punctuation are dropped; English words and numbers stay whole.

For the embedded full-text index (SQLite FTS5 with the ``unicode61`` tokenizer, which splits on spaces and
punctuation but not between Chinese characters) the tokens are joined with spaces. The index text also carries the
finer search-mode cuts of long words, so 医疗保障局 is found by 医疗 or 保障 and 个人所得税法 by 所得税.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import rjieba

__all__ = [
    "STOPWORDS",
    "is_content_token",
    "normalise",
    "segment_for_index",
    "segment_query",
    "tokenize",
]

_WHITESPACE_RUN = re.compile(r"\s+")

# Function words that carry no topic on their own. Kept deliberately short: idf weighting does the rest, and a long
# list would hide real topic words (e.g. 发展, 工作 are frequent but sometimes meaningful in a title).
STOPWORDS: frozenset[str] = frozenset(
    """
    的 地 得 了 着 过 和 与 及 以及 或 或者 并 并且 而 而且 但 但是 却 则 即 就 也 还 又 都 均 已 已经 曾
    是 为 为了 在 于 对 对于 关于 把 被 将 由 从 向 往 以 给 让 使 比 跟 同 自 自从 按 按照 依 依照 根据
    这 那 这个 那个 这些 那些 这样 那样 这种 那种 此 其 其中 之 之一 者 所 所以 因 因为 因此 如 如果 若
    要 会 能 能够 可 可以 应 应当 应该 须 必须 不 没 没有 无 非 有 有关 个 些 每 各 该 本 等 等等 们
    上 下 中 内 外 前 后 里 间 时 时候 一 一个 一些 一种 一切 我 我们 你 你们 他 他们 她 它 它们 自己
    吗 呢 吧 啊 呀 嘛 么 什么 怎么 怎样 如何 哪 哪里 谁 多少 几 更 最 很 太 非常 十分 较 比较
    a an the and or but nor not no of to in on at by for from with as into onto about over under than then
    is are was were be been being am do does did has have had having will would shall should can could may
    might must this that these those it its it's he she they them their his her we our you your i me my
    which who whom whose what when where why how all any each some such only also just very so too
    """.split()
)


def normalise(text: str) -> str:
    """Return ``text`` in NFKC form, Latin lower-cased, with whitespace runs collapsed to one space."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    folded = unicodedata.normalize("NFKC", text).lower()
    return _WHITESPACE_RUN.sub(" ", folded).strip()


def is_content_token(token: str) -> bool:
    """True when ``token`` has at least one letter, digit or CJK character (i.e. is not whitespace/punctuation)."""
    return any(ch.isalnum() for ch in token)


def _clean(tokens: Iterable[str], drop_stopwords: bool) -> list[str]:
    kept = []
    for token in tokens:
        token = token.strip()
        if not token or not is_content_token(token):
            continue
        if drop_stopwords and token in STOPWORDS:
            continue
        kept.append(token)
    return kept


def tokenize(text: str, drop_stopwords: bool = True, search_mode: bool = False) -> list[str]:
    """Segment ``text`` into content tokens.

    ``search_mode`` adds jieba's finer sub-words of long words (医疗保障局 → 医疗, 保障, 保障局) after them.
    """
    normalised = normalise(text)
    if not normalised:
        return []
    raw = rjieba.cut_for_search(normalised) if search_mode else rjieba.cut(normalised)
    return _clean(raw, drop_stopwords)


def segment_for_index(text: str) -> str:
    """Space-separated tokens for an FTS5 ``unicode61`` column; stopwords kept, sub-words of long words added."""
    return " ".join(tokenize(text, drop_stopwords=False, search_mode=True))


def segment_query(text: str) -> list[str]:
    """Tokens of a user query, analysed like the index (every token returned is also emitted at index time).

    Only the ordinary cut is used: requiring the finer sub-words as well would add nothing for an AND query, and
    for ranking it would count a long word several times.
    """
    return tokenize(text, drop_stopwords=False, search_mode=False)

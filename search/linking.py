"""Policy ↔ news linking: interest profiles, an in-memory profile index, and the Elasticsearch equivalents.

An *interest profile* describes what coverage of one policy version looks like: weighted key terms (tf-idf of the
policy text against a background of news, title terms boosted), per-clause terms (to say which clause an article is
about), phrases that name the policy (its title, short name, aliases and the editor's keywords) and synonyms.

Scoring one article against one profile (the same in both directions, so the numbers agree):

    score = Σ_term  weight(term) · sat(tf(term))  +  Σ_phrase  weight(phrase) · sat(count(phrase))

where ``sat`` is BM25's saturating, length-normalised term frequency (a term repeated ten times is not ten times the
evidence, and a long article has more chances to mention anything) and headline occurrences count extra. The sum
is then multiplied by article-level evidence: reporting on law-making (草案, 审议, 施行 …) raises it, a headline
citing 《some other policy》 lowers it.

``ProfileIndex`` answers "which open policies is this new article about?" with an inverted term index over all open
profiles; ``rank_articles_for_policy`` answers "which existing coverage is about this new policy?", and
``expand_with_feedback`` then adds the wording of that coverage to the profile (pseudo-relevance feedback), which
helps most when news never names the policy. The module is backend-agnostic: ``percolator_index_mapping`` and
friends build the equivalent Elasticsearch request bodies.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from search.analysis import normalise, tokenize
from search.synonyms import synonym_table

__all__ = [
    "AnalysedArticle",
    "BackgroundStats",
    "InterestProfile",
    "LinkSuggestion",
    "LinkingError",
    "PolicyCorpusStats",
    "ProfileIndex",
    "analyse_article",
    "build_profile",
    "expand_with_feedback",
    "more_like_this_query",
    "percolate_query",
    "percolator_index_mapping",
    "policy_names",
    "profile_to_percolator_document",
    "rank_articles_for_policy",
    "score_article",
]

# --- tuning constants (chosen for legal/policy text ↔ news in general, not for any particular law) -----------------

TITLE_TERM_BOOST = 3.0  # a word of the policy title is worth three body mentions' worth of tf-idf evidence
KEYWORD_WEIGHT = 2.0  # editor keywords outrank every automatically chosen term (top term weighs 1.0)
NAME_WEIGHT = 3.0  # an article naming the policy is about it, whatever else it says
OTHER_POLICY_FACTOR = 0.6  # a headline citing 《another policy》 is mostly about that one
SYNONYM_FACTOR = 0.8  # a synonym is good but slightly weaker evidence than the word itself
BOILERPLATE_FACTOR = 0.25  # legal drafting vocabulary (本法, 责令改正 …) says little about the subject
ARTICLE_TITLE_BOOST = 2.0  # a term in the headline counts as this many body mentions
K1 = 1.2
B = 0.75
DEFAULT_AVERAGE_ARTICLE_LENGTH = 200.0  # tokens (search mode, stopwords dropped) of a typical ~300-character item
DEFAULT_THRESHOLD = 2.0  # ~0.7% of unrelated article–policy pairs pass; nearly all articles naming the policy do
DEFAULT_MAX_TERMS = 150
DEFAULT_MAX_CLAUSE_TERMS = 12
TF_EXPONENT = 0.5  # between log and linear: a law's subject words recur dozens of times, and that matters
CLAUSE_MIN_COVERAGE = 0.25  # share of a clause's weighted terms an article must hit to be "about" that clause
CLAUSE_MIN_SHARED_TERMS = 3  # clause words (besides the policy title's) an article must share with the clause
CLAUSE_DOMINANCE = 1.5  # the best clause must beat the runner-up by this factor to be named

# Words of legal drafting that appear in nearly every law and regulation whatever its subject. Discounted in the
# body of a policy (not in its title: 处分 in 政务处分法 is the subject).
LEGAL_BOILERPLATE: frozenset[str] = frozenset(
    """
    本法 本条例 本办法 本规定 法律 法规 行政法规 规定 条例 办法 依法 依照 按照 违反 罚款 责令 改正 处罚 行政处罚
    县级 以上 以下 人民政府 主管部门 有关部门 部门 国务院 单位 个人 组织 负责 情节 严重 给予 处分 没收 违法
    所得 万元 本条 前款 总则 附则 施行 日起 实施 制定 职责 范围 相应 其他 相关 工作 管理 监督 建立 健全 加强
    不得 国家 地方 各级 机关 公布 批准 备案 予以 采取 措施 提供 开展 保障 支持 鼓励 推动 促进 落实 规范 合法
    权益 活动 要求 具体 必要 及时 情况 方面 规划 制度 机制 体系 职能 依据 程序 条件 事项 责任 追究 刑事责任
    构成 犯罪 构成犯罪 直接 负责 主管人员 直接责任 人员 其他人员 警告 通报 批评 责令停止 停止 吊销 许可证
    公民 法人 社会 政府 中华人民共和国 第一 第二 第三
    """.split()
)

# News reporting on a law-making or enforcement event: such an article about the policy's subject is more likely
# about the policy itself than a general story on the same subject. Only ever multiplies a topical score.
LEGISLATIVE_CONTEXT: frozenset[str] = frozenset(
    """
    立法 法律 法规 条例 草案 审议 修订 修正 修改 施行 颁布 公布 通过 表决 执法检查 征求意见 意见稿 法治 依法
    规章 实施细则 配套 解读 新规
    """.split()
)
CONTEXT_BOOST = 0.3  # score multiplier 1.3 for such articles

# Reports of the procedure that makes a policy (readings and votes of the legislature, a presidential order; an
# executive meeting of the government, a decree) cluster around the policy's own dates: publication, consultation
# window, adoption. Such a report often lists a dozen drafts and says little about any of them, so its words are weak
# evidence; its date is not. Among reports of the procedure of the policy's own kind, nearness to one of its dates
# multiplies the score by up to 1 + TIME_BOOST (decaying with TIME_SCALE_DAYS). Time only orders candidates: whether
# an article passes a profile's threshold is decided on its words alone.
PROCEDURE_MARKERS: dict[str, tuple[str, ...]] = {
    # a numbered session of the legislature or of its standing committee, its chairpersons' meeting, a presidential
    # order: not a mere mention of the standing committee (a State Council meeting "submits a draft to" it)
    "legislature": ("人大常委会第", "人民代表大会第", "委员长会议", "主席令"),  # laws (…法, …法典)
    "government": ("常务会议", "国务院令", "政府令"),  # regulations, rules and other policies
}
LAW_SUFFIXES = ("法", "法典")
NOT_LAW_SUFFIXES = ("办法", "方法", "做法")  # 管理办法 is a government rule, not a law
TIME_BOOST = 12.0
TIME_SCALE_DAYS = 20.0

_NUMBERING = re.compile(r"^[第]?[0-9一二三四五六七八九十百千零〇两]+[条章节款项目]?$")
_NAME_PREFIXES = ("中华人民共和国",)
_CITED_TITLE = re.compile(r"《([^《》]{2,60})》")
_DRAFT_SUFFIX = re.compile(r"[(（〔\[【][^()（）〔〕\[\]【】]*[)）〕\]】]\s*$")


class LinkingError(ValueError):
    """Bad input for linking; ``fields`` maps each offending field to a message."""

    def __init__(self, fields: Mapping[str, str]):
        self.fields = dict(fields)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.fields.items()))


# --- background statistics -------------------------------------------------------------------------------------------


class BackgroundStats:
    """Inverse document frequencies of terms in the text the profiles are matched against (news).

    Build it from the platform's own article corpus (``from_documents``) where one exists; jieba's general idf table
    (``from_jieba``) is the fallback for a fresh install.
    """

    def __init__(self, idf: Mapping[str, float], default_idf: float):
        self._idf = dict(idf)
        self.default_idf = default_idf

    def idf(self, term: str) -> float:
        return self._idf.get(term, self.default_idf)

    def __len__(self) -> int:
        return len(self._idf)

    @classmethod
    def from_document_frequencies(cls, doc_freq: Mapping[str, int], n_docs: int) -> BackgroundStats:
        if n_docs <= 0:
            raise LinkingError({"n_docs": "must be positive"})
        # BM25's idf, floored at a small positive value so that very common terms still order candidates a little.
        idf = {term: max(0.05, math.log((n_docs - df + 0.5) / (df + 0.5) + 1.0)) for term, df in doc_freq.items()}
        unseen = math.log((n_docs + 0.5) / 0.5 + 1.0)
        return cls(idf, default_idf=unseen)

    @classmethod
    def from_documents(cls, texts: Iterable[str]) -> BackgroundStats:
        doc_freq: Counter[str] = Counter()
        n_docs = 0
        for text in texts:
            n_docs += 1
            doc_freq.update(set(tokenize(text, drop_stopwords=True, search_mode=True)))
        return cls.from_document_frequencies(doc_freq, max(n_docs, 1))

    @classmethod
    def from_jieba(cls) -> BackgroundStats:
        import jieba.analyse  # the idf table ships inside the jieba package

        idf_path = Path(jieba.analyse.__file__).with_name("idf.txt")
        idf: dict[str, float] = {}
        with idf_path.open(encoding="utf-8") as lines:
            for line in lines:
                word, _, value = line.strip().rpartition(" ")
                if word:
                    idf[word] = float(value)
        values = sorted(idf.values())
        return cls(idf, default_idf=values[len(values) // 2])


class PolicyCorpusStats:
    """How many policy texts use each word: words that most laws share (并处, 主管部门) describe the genre, not
    the subject, and are discounted in profiles. Built from all policies the platform holds."""

    def __init__(self, doc_freq: Mapping[str, int], n_docs: int, strength: float = 0.7):
        if n_docs <= 0:
            raise LinkingError({"n_docs": "must be positive"})
        self._doc_freq = dict(doc_freq)
        self.n_docs = n_docs
        self.strength = strength
        self._scale = math.log((n_docs + 1.0) / 0.5)

    @classmethod
    def from_texts(cls, texts: Iterable[str], strength: float = 0.7) -> PolicyCorpusStats:
        doc_freq: Counter[str] = Counter()
        n_docs = 0
        for text in texts:
            n_docs += 1
            doc_freq.update(set(_profile_tokens(text)))
        return cls(doc_freq, max(n_docs, 1), strength)

    def factor(self, term: str) -> float:
        df = self._doc_freq.get(term, 0)
        specificity = max(0.0, math.log((self.n_docs + 1.0) / (df + 0.5))) / self._scale
        return (1.0 - self.strength) + self.strength * min(1.0, specificity)


# --- profiles --------------------------------------------------------------------------------------------------------


@dataclass
class InterestProfile:
    """What coverage of one policy version looks like. Weights are relative: the strongest automatic term is 1.0."""

    policy_id: str
    version: int
    terms: dict[str, float]
    clause_terms: dict[str, dict[str, float]] = field(default_factory=dict)
    editor_keywords: list[str] = field(default_factory=list)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    phrases: dict[str, float] = field(default_factory=dict)  # normalised strings matched verbatim (names, keywords)
    title: str = ""
    dates: list[str] = field(default_factory=list)  # ISO dates of the policy (published, window, adopted)
    procedure: str = ""  # which procedure makes it: a key of PROCEDURE_MARKERS ("" = none known)
    _days: tuple[dt.date, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._days = tuple(dt.date.fromisoformat(value) for value in self.dates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "version": self.version,
            "title": self.title,
            "terms": dict(self.terms),
            "clause_terms": {number: dict(terms) for number, terms in self.clause_terms.items()},
            "editor_keywords": list(self.editor_keywords),
            "synonyms": {term: list(alternatives) for term, alternatives in self.synonyms.items()},
            "phrases": dict(self.phrases),
            "threshold": self.threshold,
            "dates": list(self.dates),
            "procedure": self.procedure,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InterestProfile:
        errors = {}
        for name, kind in (("policy_id", str), ("version", int), ("terms", dict)):
            if not isinstance(data.get(name), kind):
                errors[name] = f"required, must be {kind.__name__}"
        try:
            dates = _iso_dates(data.get("dates") or ())
        except LinkingError as exc:
            errors.update(exc.fields)
        if errors:
            raise LinkingError(errors)
        return cls(
            policy_id=data["policy_id"],
            dates=dates,
            procedure=str(data.get("procedure") or _procedure_kind(data.get("title") or "")),
            version=data["version"],
            title=data.get("title", ""),
            terms={str(term): float(weight) for term, weight in data["terms"].items()},
            clause_terms={
                str(number): {str(term): float(weight) for term, weight in terms.items()}
                for number, terms in data.get("clause_terms", {}).items()
            },
            editor_keywords=list(data.get("editor_keywords", [])),
            synonyms={str(term): list(values) for term, values in data.get("synonyms", {}).items()},
            phrases={str(phrase): float(weight) for phrase, weight in data.get("phrases", {}).items()},
            threshold=float(data.get("threshold", DEFAULT_THRESHOLD)),
        )


def _as_date(value: Any) -> dt.date | None:
    """A calendar date from a date, a datetime or an ISO 8601 string (date or date-time); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise LinkingError({"date": "must be a date, a datetime or an ISO 8601 string"})


def _iso_dates(values: Iterable[Any]) -> list[str]:
    if isinstance(values, (str, dt.date)):
        values = [values]
    days = {day for day in (_as_date(value) for value in values) if day is not None}
    return [day.isoformat() for day in sorted(days)]


def _procedure_kind(title: str) -> str:
    """The procedure that makes a policy with this title: "legislature" for a law, "government" otherwise."""
    names = policy_names(title) if normalise(title) else []
    if not names:
        return ""
    name = names[0]
    return "legislature" if name.endswith(LAW_SUFFIXES) and not name.endswith(NOT_LAW_SUFFIXES) else "government"


def _profile_tokens(text: str) -> list[str]:
    """Tokens that can carry a subject: no stopwords, numbering (第十二条), bare numbers or single characters.

    The ordinary cut, not search mode: the sub-words of long words (染病 in 传染病, 产经 in 生产经营者) are mostly
    noise as profile terms. Articles are analysed in search mode, so a profile word is found inside longer words.
    """
    return [
        token
        for token in tokenize(text, drop_stopwords=True, search_mode=False)
        if len(token) > 1 and not _NUMBERING.match(token) and not token.replace(".", "").isdigit()
    ]


def policy_names(title: str, aliases: Iterable[str] = ()) -> list[str]:
    """Normalised strings by which news refers to a policy: the title without the country prefix or a (草案)-style
    suffix, and the given aliases."""
    names = []
    base = normalise(title)
    while True:
        stripped = _DRAFT_SUFFIX.sub("", base).strip()
        if stripped == base:
            break
        base = stripped
    for prefix in _NAME_PREFIXES:
        if base.startswith(prefix) and len(base) > len(prefix) + 1:
            base = base[len(prefix) :]
    if len(base) >= 2:
        names.append(base)
    for alias in aliases:
        alias = normalise(alias)
        if len(alias) >= 2 and alias not in names:
            names.append(alias)
    return names


def _tfidf(
    tokens: Iterable[str],
    background: BackgroundStats,
    boilerplate_factor: float,
    policy_stats: PolicyCorpusStats | None = None,
) -> dict[str, float]:
    counts = Counter(tokens)
    weights = {}
    for term, count in counts.items():
        weight = count**TF_EXPONENT * background.idf(term)
        if term in LEGAL_BOILERPLATE:
            weight *= boilerplate_factor
        if policy_stats is not None:
            weight *= policy_stats.factor(term)
        weights[term] = weight
    return weights


def _top(weights: Mapping[str, float], limit: int) -> dict[str, float]:
    return dict(heapq.nlargest(limit, weights.items(), key=lambda item: (item[1], item[0])))


def build_profile(
    policy_id: str,
    version: int,
    title: str,
    clauses: Sequence[tuple[str | int, str]],
    keywords: Iterable[str] = (),
    synonyms: Mapping[str, Iterable[str]] | None = None,
    *,
    aliases: Iterable[str] = (),
    background: BackgroundStats | None = None,
    policy_stats: PolicyCorpusStats | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_terms: int | None = None,
    max_clause_terms: int | None = None,
    dates: Iterable[Any] = (),
) -> InterestProfile:
    """Build the interest profile of one policy version from its title and numbered clauses.

    ``background`` supplies idf (defaults to jieba's general table); ``policy_stats`` (optional) discounts words
    shared by most policies; ``keywords`` are the editor's and weigh most;
    ``synonyms`` maps a term to equivalent wordings (医保 → 医疗保障) matched as well, slightly weaker; they add to
    the built-in table of search.synonyms. ``profile.synonyms`` keeps the ones that applied. ``dates`` are the
    policy's own dates (publication, consultation window, adoption): reports of legislative procedure near them rank
    higher.
    """
    max_terms = DEFAULT_MAX_TERMS if max_terms is None else max_terms
    max_clause_terms = DEFAULT_MAX_CLAUSE_TERMS if max_clause_terms is None else max_clause_terms
    errors = {}
    if not isinstance(policy_id, str) or not policy_id.strip():
        errors["policy_id"] = "required"
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        errors["version"] = "must be a non-negative integer"
    if not isinstance(title, str) or not normalise(title):
        errors["title"] = "required"
    if not isinstance(clauses, Sequence) or any(
        not isinstance(clause, (tuple, list)) or len(clause) != 2 or not isinstance(clause[1], str)
        for clause in clauses
    ):
        errors["clauses"] = "must be a list of (number, text) pairs"
    for name, value in (("keywords", keywords), ("aliases", aliases)):
        if isinstance(value, str) or any(not isinstance(item, str) for item in value):
            errors[name] = "must be a list of strings"
    if synonyms is not None and not isinstance(synonyms, Mapping):
        errors["synonyms"] = "must map a term to a list of equivalent wordings"
    if not isinstance(threshold, (int, float)) or threshold < 0:
        errors["threshold"] = "must be a non-negative number"
    if max_terms < 1:
        errors["max_terms"] = "must be at least 1"
    try:
        iso_dates = _iso_dates(dates)
    except LinkingError:
        errors["dates"] = "must be dates, datetimes or ISO 8601 strings"
    if errors:
        raise LinkingError(errors)
    keywords, aliases = list(keywords), list(aliases)
    background = background or _default_background()

    title_tokens = _profile_tokens(title)
    names = policy_names(title, aliases)
    clause_tokens = [(str(number), _profile_tokens(text)) for number, text in clauses]

    body_weights = _tfidf(
        (token for _, tokens in clause_tokens for token in tokens), background, BOILERPLATE_FACTOR, policy_stats
    )
    terms = _top(body_weights, max_terms)
    for term in set(title_tokens):
        # Title words define the subject; generic drafting words in a title (管理, 条例) are still discounted.
        factor = BOILERPLATE_FACTOR if term in LEGAL_BOILERPLATE else 1.0
        terms[term] = terms.get(term, 0.0) + TITLE_TERM_BOOST * background.idf(term) * factor
    top_weight = max(terms.values(), default=1.0) or 1.0
    terms = {term: weight / top_weight for term, weight in terms.items() if weight > 0}

    phrases: dict[str, float] = {name: NAME_WEIGHT for name in names}
    editor_keywords = []
    for keyword in keywords:
        normalised = normalise(keyword)
        if not normalised:
            continue
        editor_keywords.append(normalised)
        keyword_tokens = tokenize(normalised, drop_stopwords=True)
        if len(keyword_tokens) == 1:
            terms[keyword_tokens[0]] = max(terms.get(keyword_tokens[0], 0.0), KEYWORD_WEIGHT)
        else:
            phrases[normalised] = max(phrases.get(normalised, 0.0), KEYWORD_WEIGHT)

    applied_synonyms = {}
    for term, alternatives in synonym_table(extra=synonyms).items():
        base = max(terms.get(term, 0.0), phrases.get(term, 0.0))
        if base <= 0:
            continue
        applied_synonyms[term] = alternatives
        for alternative in alternatives:
            alternative_tokens = tokenize(alternative, drop_stopwords=True)
            if len(alternative_tokens) == 1:
                token = alternative_tokens[0]
                terms[token] = max(terms.get(token, 0.0), base * SYNONYM_FACTOR)
            elif alternative_tokens:
                phrases[alternative] = max(phrases.get(alternative, 0.0), base * SYNONYM_FACTOR)

    clause_terms = {}
    for number, tokens in clause_tokens:
        weights = _top(_tfidf(tokens, background, BOILERPLATE_FACTOR), max_clause_terms)
        total = sum(weights.values())
        if total > 0:
            clause_terms[number] = {term: weight / total for term, weight in weights.items()}

    return InterestProfile(
        policy_id=policy_id,
        version=version,
        title=normalise(title),
        terms=terms,
        clause_terms=clause_terms,
        editor_keywords=editor_keywords,
        synonyms=applied_synonyms,
        threshold=threshold,
        phrases=phrases,
        dates=iso_dates,
        procedure=_procedure_kind(title),
    )


_BACKGROUND_CACHE: list[BackgroundStats] = []


def _default_background() -> BackgroundStats:
    if not _BACKGROUND_CACHE:
        _BACKGROUND_CACHE.append(BackgroundStats.from_jieba())
    return _BACKGROUND_CACHE[0]


# --- articles and scoring --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysedArticle:
    """An article analysed once for matching against any number of profiles."""

    article_id: str | None
    title: str  # normalised
    body: str  # normalised
    term_freqs: dict[str, float]  # body count + ARTICLE_TITLE_BOOST × title count
    length: int  # tokens, for length normalisation
    legislative_context: bool = False  # the article reports on law-making or enforcement
    cited_in_title: tuple[str, ...] = ()  # 《…》 titles the headline cites
    published: dt.date | None = None
    procedures: frozenset[str] = frozenset()  # kinds of policy-making procedure it reports (PROCEDURE_MARKERS)


def analyse_article(
    title: str, text: str, article_id: str | None = None, published: Any = None
) -> AnalysedArticle:
    """Analyse an article once for matching; ``published`` (date, datetime or ISO string) is optional."""
    if not isinstance(title, str) or not isinstance(text, str):
        raise LinkingError({"article": "title and text must be strings"})
    try:
        published_on = _as_date(published)
    except LinkingError:
        raise LinkingError({"published": "must be a date, a datetime or an ISO 8601 string"}) from None
    title_tokens = tokenize(title, drop_stopwords=True, search_mode=True)
    body_tokens = tokenize(text, drop_stopwords=True, search_mode=True)
    freqs: dict[str, float] = dict(Counter(body_tokens))
    for token in title_tokens:
        freqs[token] = freqs.get(token, 0.0) + ARTICLE_TITLE_BOOST
    return AnalysedArticle(
        article_id=article_id,
        title=normalise(title),
        body=normalise(text),
        term_freqs=freqs,
        length=len(title_tokens) + len(body_tokens),
        legislative_context=not LEGISLATIVE_CONTEXT.isdisjoint(freqs),
        cited_in_title=tuple(_CITED_TITLE.findall(normalise(title))),
        published=published_on,
        procedures=frozenset(
            kind
            for kind, markers in PROCEDURE_MARKERS.items()
            if any(marker in title or marker in text for marker in markers)
        ),
    )


def _article_factor(profile: InterestProfile, article: AnalysedArticle) -> float:
    """Multiplier for article-level evidence: legislative context, or a headline about some other policy."""
    factor = 1.0 + CONTEXT_BOOST if article.legislative_context else 1.0
    if article.cited_in_title and not any(
        name in cited or cited in name for cited in article.cited_in_title for name in _names_of(profile)
    ):
        factor *= OTHER_POLICY_FACTOR
    return factor


def _temporal_factor(profile: InterestProfile, article: AnalysedArticle) -> float:
    """Multiplier for a procedure report near one of the policy's dates (1.0 for anything else)."""
    if article.published is None or not profile._days or profile.procedure not in article.procedures:
        return 1.0
    distance = min(abs((article.published - day).days) for day in profile._days)
    return 1.0 + TIME_BOOST * math.exp(-distance / TIME_SCALE_DAYS)


def _names_of(profile: InterestProfile) -> list[str]:
    return [phrase for phrase, weight in profile.phrases.items() if weight >= NAME_WEIGHT] or [profile.title]


def _length_norm(article: AnalysedArticle, average_length: float) -> float:
    return K1 * (1.0 - B + B * article.length / average_length)


def _saturate(tf: float, norm: float) -> float:
    return tf * (K1 + 1.0) / (tf + norm)


def _phrase_count(article: AnalysedArticle, phrase: str) -> float:
    return article.body.count(phrase) + ARTICLE_TITLE_BOOST * article.title.count(phrase)


@dataclass(frozen=True)
class LinkSuggestion:
    """One proposed policy ↔ article link, with the evidence an editor needs to judge it."""

    policy_id: str
    score: float
    clause_number: str | None
    matched_terms: dict[str, float]  # term or phrase → its contribution to the evidence, largest first
    article_id: str | None = None
    version: int | None = None
    # What the article's words say (the sum of matched_terms), compared with the threshold; ``score`` is the evidence
    # times the temporal factor and orders suggestions.
    evidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "version": self.version,
            "article_id": self.article_id,
            "score": round(self.score, 4),
            "clause_number": self.clause_number,
            "matched_terms": {term: round(value, 4) for term, value in self.matched_terms.items()},
        }


def _contributions(profile: InterestProfile, article: AnalysedArticle, norm: float) -> dict[str, float]:
    contributions = {}
    freqs = article.term_freqs
    if len(freqs) < len(profile.terms):
        pairs = ((term, profile.terms.get(term)) for term in freqs)
    else:
        pairs = ((term, weight) for term, weight in profile.terms.items() if term in freqs)
    for term, weight in pairs:
        if weight:
            contributions[term] = weight * _saturate(freqs[term], norm)
    for phrase, weight in profile.phrases.items():
        count = _phrase_count(article, phrase)
        if count:
            contributions[phrase] = contributions.get(phrase, 0.0) + weight * _saturate(count, norm)
    factor = _article_factor(profile, article)
    if factor != 1.0:
        contributions = {term: value * factor for term, value in contributions.items()}
    return contributions


def _best_clause(profile: InterestProfile, article: AnalysedArticle, norm: float) -> str | None:
    scores = []
    freqs = article.term_freqs
    # Words of the policy title say the article is about the policy, not about one clause of it.
    title_words = set(tokenize(profile.title, drop_stopwords=True, search_mode=True))
    for number, terms in profile.clause_terms.items():
        shared = [term for term in terms if term in freqs]
        if len([term for term in shared if term not in title_words]) < CLAUSE_MIN_SHARED_TERMS:
            continue
        # Coverage rather than raw score: a one-line clause and a long one are judged on the same 0..1 scale.
        coverage = sum(terms[term] * min(1.0, _saturate(freqs[term], norm)) for term in shared)
        scores.append((coverage, number))
    if not scores:
        return None
    scores.sort(reverse=True)
    best, number = scores[0]
    runner_up = scores[1][0] if len(scores) > 1 else 0.0
    if best >= CLAUSE_MIN_COVERAGE and best >= CLAUSE_DOMINANCE * runner_up:
        return number
    return None


def score_article(
    profile: InterestProfile,
    article: AnalysedArticle,
    average_length: float = DEFAULT_AVERAGE_ARTICLE_LENGTH,
) -> LinkSuggestion:
    """Score one analysed article against one profile, with the contributing terms and the best clause."""
    norm = _length_norm(article, average_length)
    contributions = _contributions(profile, article, norm)
    ordered = dict(sorted(contributions.items(), key=lambda item: (-item[1], item[0])))
    evidence = sum(ordered.values())
    return LinkSuggestion(
        policy_id=profile.policy_id,
        version=profile.version,
        article_id=article.article_id,
        score=evidence * _temporal_factor(profile, article),
        clause_number=_best_clause(profile, article, norm) if ordered else None,
        matched_terms=ordered,
        evidence=evidence,
    )


ArticleInput = AnalysedArticle | tuple[str, str, str] | tuple[str, str, str, Any]


def _as_analysed(article: ArticleInput) -> AnalysedArticle:
    if isinstance(article, AnalysedArticle):
        return article
    if isinstance(article, (tuple, list)) and len(article) in (3, 4):
        article_id, title, text, *published = article
        return analyse_article(title, text, article_id=str(article_id), published=published[0] if published else None)
    raise LinkingError(
        {"articles": "each article must be (article_id, title, text[, published]) or an AnalysedArticle"}
    )


def rank_articles_for_policy(
    profile: InterestProfile,
    articles: Iterable[ArticleInput],
    top_k: int | None = 20,
    min_score: float = 0.0,
    average_length: float = DEFAULT_AVERAGE_ARTICLE_LENGTH,
) -> list[LinkSuggestion]:
    """Existing coverage of a (newly published) policy, best first: the embedded more-like-this."""
    suggestions = []
    for article in articles:
        suggestion = score_article(profile, _as_analysed(article), average_length)
        if suggestion.evidence > 0 and suggestion.evidence >= min_score:
            suggestions.append(suggestion)
    key = lambda suggestion: (-suggestion.score, suggestion.article_id or "")  # noqa: E731
    if top_k is None:
        return sorted(suggestions, key=key)
    return heapq.nsmallest(top_k, suggestions, key=key)


def expand_with_feedback(
    profile: InterestProfile,
    top_articles: Sequence[AnalysedArticle],
    background: BackgroundStats | None = None,
    n_terms: int = 20,
    weight: float = 0.15,
) -> InterestProfile:
    """A copy of ``profile`` that also speaks the news' language: the most distinctive words of the articles that
    matched it best (pseudo-relevance feedback) join its terms at a reduced ``weight``.

    Laws say 传染病 and 甲类; the coverage says 新冠 and 乙类乙管. Feed it the top few articles of
    ``rank_articles_for_policy`` when a policy opens, then index the expanded profile for new articles.
    """
    if not top_articles or n_terms < 1 or weight <= 0:
        return profile
    background = background or _default_background()
    pooled: dict[str, float] = defaultdict(float)
    for article in top_articles:
        scored = {
            term: (1.0 + math.log(tf)) * background.idf(term)
            for term, tf in article.term_freqs.items()
            if len(term) > 1 and not _NUMBERING.match(term) and tf >= 1
        }
        top = max(scored.values(), default=0.0)
        for term, value in scored.items():
            pooled[term] += value / top / len(top_articles)
    chosen = _top(pooled, n_terms)
    strongest = max(chosen.values(), default=0.0) or 1.0
    terms = dict(profile.terms)
    for term, value in chosen.items():
        terms[term] = max(terms.get(term, 0.0), weight * value / strongest)
    return replace(profile, terms=terms)


def _phrase_key(phrase: str) -> str | None:
    """The token under which a phrase is indexed: its longest content word, which is both rare and cut the same way
    wherever the phrase occurs (the phrase itself is then confirmed by substring search)."""
    tokens = [token for token in tokenize(phrase, drop_stopwords=True) if len(token) > 1] or tokenize(phrase)
    return max(tokens, key=len) if tokens else None


class ProfileIndex:
    """All open profiles behind one inverted term index: one article is matched against all of them at once."""

    def __init__(self, average_article_length: float = DEFAULT_AVERAGE_ARTICLE_LENGTH):
        if average_article_length <= 0:
            raise LinkingError({"average_article_length": "must be positive"})
        self.average_article_length = average_article_length
        self._profiles: dict[str, InterestProfile] = {}
        self._postings: dict[str, dict[str, float]] = defaultdict(dict)
        # Phrases are found by substring search, but only for profiles sharing a token with the article.
        self._phrase_keys: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(dict)

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, policy_id: object) -> bool:
        return policy_id in self._profiles

    def get(self, policy_id: str) -> InterestProfile | None:
        return self._profiles.get(policy_id)

    def add(self, profile: InterestProfile) -> bool:
        """Add or replace the profile of ``profile.policy_id``; an older version than the one held is ignored."""
        current = self._profiles.get(profile.policy_id)
        if current is not None:
            if profile.version < current.version:
                return False
            self.remove(profile.policy_id)
        self._profiles[profile.policy_id] = profile
        for term, weight in profile.terms.items():
            self._postings[term][profile.policy_id] = weight
        for phrase, weight in profile.phrases.items():
            key = _phrase_key(phrase)
            if key:
                self._phrase_keys[key].setdefault(profile.policy_id, []).append((phrase, weight))
        return True

    update = add

    def remove(self, policy_id: str) -> bool:
        profile = self._profiles.pop(policy_id, None)
        if profile is None:
            return False
        for term in profile.terms:
            postings = self._postings.get(term)
            if postings is not None:
                postings.pop(policy_id, None)
                if not postings:
                    del self._postings[term]
        for phrase in profile.phrases:
            key = _phrase_key(phrase)
            owners = self._phrase_keys.get(key) if key else None
            if owners is not None:
                owners.pop(policy_id, None)
                if not owners:
                    del self._phrase_keys[key]
        return True

    def evidence(self, article: AnalysedArticle) -> dict[str, float]:
        """What the article's words say for every profile sharing anything with it (no threshold, no time)."""
        norm = _length_norm(article, self.average_article_length)
        totals: dict[str, float] = defaultdict(float)
        postings = self._postings
        phrase_candidates: dict[str, list[tuple[str, float]]] = {}
        for term, tf in article.term_freqs.items():
            posting = postings.get(term)
            if posting:
                saturated = tf * (K1 + 1.0) / (tf + norm)
                for policy_id, weight in posting.items():
                    totals[policy_id] += weight * saturated
            owners = self._phrase_keys.get(term)
            if owners:
                for policy_id, phrases in owners.items():
                    phrase_candidates.setdefault(policy_id, []).extend(phrases)
        for policy_id, phrases in phrase_candidates.items():
            for phrase, weight in phrases:
                count = _phrase_count(article, phrase)
                if count:
                    totals[policy_id] += weight * _saturate(count, norm)
        if article.legislative_context or article.cited_in_title:
            profiles = self._profiles
            for policy_id in totals:
                totals[policy_id] *= _article_factor(profiles[policy_id], article)
        return totals

    def scores(self, article: AnalysedArticle) -> dict[str, float]:
        """Ranking score of every profile sharing anything with the article: its evidence times the temporal factor
        (as ``score_article`` computes it), without threshold or explanation."""
        return self._with_time(article, self.evidence(article))

    def _with_time(self, article: AnalysedArticle, evidence: dict[str, float]) -> dict[str, float]:
        if not article.procedures or article.published is None:
            return evidence
        profiles = self._profiles
        return {pid: value * _temporal_factor(profiles[pid], article) for pid, value in evidence.items()}

    def match_analysed(
        self, article: AnalysedArticle, top_k: int | None = 10, min_score: float | None = None
    ) -> list[LinkSuggestion]:
        evidence = self.evidence(article)
        profiles = self._profiles
        if min_score is None:
            evidence = {pid: value for pid, value in evidence.items() if value > 0 and value >= profiles[pid].threshold}
        else:
            evidence = {pid: value for pid, value in evidence.items() if value > 0 and value >= min_score}
        passing = list(self._with_time(article, evidence).items())
        key = lambda item: (-item[1], item[0])  # noqa: E731
        ranked = sorted(passing, key=key) if top_k is None else heapq.nsmallest(top_k, passing, key=key)
        return [
            score_article(self._profiles[policy_id], article, self.average_article_length) for policy_id, _ in ranked
        ]

    def match(
        self, article_title: str, article_text: str, top_k: int | None = 10, min_score: float | None = None
    ) -> list[LinkSuggestion]:
        """Open policies this article is about, best first. ``min_score`` None means each profile's own threshold."""
        if top_k is not None and top_k < 1:
            raise LinkingError({"top_k": "must be at least 1"})
        return self.match_analysed(analyse_article(article_title, article_text), top_k=top_k, min_score=min_score)


# --- Elasticsearch request bodies --------------------------------------------------------------------------------------
#
# The percolator only selects candidate profiles and more-like-this only selects candidate articles: every candidate is
# re-scored with ``score_article`` on the stored profile, so scores, thresholds, clauses and matched terms are the same
# on both backends. Articles are percolated pre-segmented by search.analysis (whitespace analyzer), so the terms a
# stored profile query looks for are exactly the ones this module would match, whatever Chinese analysis plugin the
# cluster has.

PERCOLATOR_QUERY_FIELD = "query"
PERCOLATOR_PROFILE_FIELD = "profile"
ARTICLE_TITLE_FIELD = "title_terms"
ARTICLE_BODY_FIELD = "body_terms"
ARTICLE_TEXT_FIELD = "text"
# Analysed text fields of article documents in the content index (search.documents' envelope).
ARTICLE_INDEX_FIELDS = ("title", "body")
ARTICLE_INDEX_SOURCE = ["doc_id", "title", "body", "url", "outlet", "published_at"]
MLT_MAX_QUERY_TERMS = 300  # above any profile's term count, also once the cluster's analyzer has split the terms


def percolator_index_mapping(number_of_replicas: int | None = None) -> dict[str, Any]:
    """Body for creating the percolator index that stores one query per open profile, with the profile itself."""
    segmented = {"type": "text", "analyzer": "whitespace", "similarity": "BM25"}
    settings: dict[str, Any] = {"number_of_shards": 1}
    if number_of_replicas is not None:
        settings["number_of_replicas"] = number_of_replicas
    return {
        "settings": {"index": settings},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                PERCOLATOR_QUERY_FIELD: {"type": "percolator"},
                "policy_id": {"type": "keyword"},
                "version": {"type": "integer"},
                "threshold": {"type": "float"},
                # Kept in _source for re-scoring, never parsed: its keys are arbitrary terms.
                PERCOLATOR_PROFILE_FIELD: {"type": "object", "enabled": False},
                # Fields of the percolated article document; the stored queries refer to them.
                ARTICLE_TITLE_FIELD: segmented,
                ARTICLE_BODY_FIELD: segmented,
                ARTICLE_TEXT_FIELD: {"type": "text", "analyzer": "whitespace"},
            },
        },
    }


def _segmented(text: str) -> str:
    return " ".join(tokenize(text, drop_stopwords=True, search_mode=True))


def _profile_clauses(profile: InterestProfile) -> list[dict[str, Any]]:
    should: list[dict[str, Any]] = []

    def term(value: str, weight: float) -> None:
        should.append({"term": {ARTICLE_BODY_FIELD: {"value": value, "boost": round(weight, 4)}}})
        should.append({"term": {ARTICLE_TITLE_FIELD: {"value": value, "boost": round(weight * ARTICLE_TITLE_BOOST, 4)}}})

    for value, weight in sorted(profile.terms.items(), key=lambda item: (-item[1], item[0])):
        term(value, weight)
    keys: dict[str, float] = {}
    for phrase, weight in sorted(profile.phrases.items(), key=lambda item: (-item[1], item[0])):
        # The phrase's key token selects the profile as ProfileIndex does (the phrase itself may be cut differently
        # in context); match_phrase adds its weight to the ranking of candidates.
        key = _phrase_key(phrase)
        if key and key not in profile.terms:
            keys[key] = max(keys.get(key, 0.0), weight)
        segmented = _segmented(phrase)
        if segmented:
            should.append({"match_phrase": {ARTICLE_BODY_FIELD: {"query": segmented, "boost": round(weight, 4)}}})
            should.append(
                {
                    "match_phrase": {
                        ARTICLE_TITLE_FIELD: {"query": segmented, "boost": round(weight * ARTICLE_TITLE_BOOST, 4)}
                    }
                }
            )
    for key, weight in keys.items():
        term(key, weight)
    return should


def profile_to_percolator_document(profile: InterestProfile) -> dict[str, Any]:
    """The document stored in the percolator index for one profile (index it with ``_id`` = policy_id)."""
    return {
        "policy_id": profile.policy_id,
        "version": profile.version,
        "threshold": profile.threshold,
        PERCOLATOR_PROFILE_FIELD: profile.to_dict(),
        PERCOLATOR_QUERY_FIELD: {"bool": {"should": _profile_clauses(profile), "minimum_should_match": 1}},
    }


def percolate_query(article_title: str, article_text: str, size: int = 10) -> dict[str, Any]:
    """Search body finding the stored profiles that share anything with one article: the ``size`` best by the
    percolator's score are the candidates, each returned with its profile for re-scoring."""
    if size < 1:
        raise LinkingError({"size": "must be at least 1"})
    return {
        "size": size,
        "_source": ["policy_id", "version", PERCOLATOR_PROFILE_FIELD],
        "query": {
            "percolate": {
                "field": PERCOLATOR_QUERY_FIELD,
                "document": {
                    ARTICLE_TITLE_FIELD: _segmented(article_title),
                    ARTICLE_BODY_FIELD: _segmented(article_text),
                },
            }
        },
    }


def more_like_this_query(profile: InterestProfile, size: int = 20) -> dict[str, Any]:
    """Search body over the content index for candidate coverage of a policy: articles like the profile's terms, or
    naming one of its phrases. Each hit carries its title and body for re-scoring."""
    if size < 1:
        raise LinkingError({"size": "must be at least 1"})
    ranked_terms = [term for term, _ in sorted(profile.terms.items(), key=lambda item: (-item[1], item[0]))]
    should: list[dict[str, Any]] = []
    if ranked_terms:
        should.append(
            {
                "more_like_this": {
                    "fields": list(ARTICLE_INDEX_FIELDS),
                    # The fields' own analyzer cuts the like-text, as it cut the articles.
                    "like": " ".join(ranked_terms),
                    # The like-text is already a list of chosen terms: keep every one of them, once is enough.
                    "min_term_freq": 1,
                    "min_doc_freq": 1,
                    "max_query_terms": MLT_MAX_QUERY_TERMS,
                    # Candidates only: one shared term is enough, the best `size` by score are re-scored.
                    "minimum_should_match": 1,
                    "boost_terms": 1.0,
                }
            }
        )
    for phrase, weight in sorted(profile.phrases.items(), key=lambda item: (-item[1], item[0])):
        for name in ARTICLE_INDEX_FIELDS:
            should.append({"match_phrase": {name: {"query": phrase, "boost": round(weight, 4)}}})
    return {
        "size": size,
        "_source": list(ARTICLE_INDEX_SOURCE),
        "query": {
            "bool": {
                "should": should or [{"match_none": {}}],
                "minimum_should_match": 1,
                "filter": [{"term": {"doc_type": "article"}}],
            }
        },
    }

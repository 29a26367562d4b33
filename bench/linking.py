"""Policy ↔ news linking quality and speed, beside a plain BM25 baseline measured in the same run.

    .venv/bin/python bench/linking.py                 # full run (20 laws × 30,146 news items, ~10 minutes)
    .venv/bin/python bench/linking.py --laws 5 --news 3000 --profiles 300 --timing-articles 100   # quick run

Quality: for each law, every news item is scored and ranked; precision@5, recall@20 and MRR are macro-averaged over
the laws, for grade-2 relevance (the item names the law, as in the data set's README reference) and for grade ≥ 1.
"ours" is what the search service does: build the policy's interest profile (with its publication date) and score
every item (with its date) as ProfileIndex does. "ours + feedback" also feeds the top 5 items back into the profile
(expand_with_feedback, pseudo-relevance feedback) and ranks again; the service does not do this step.
The title-masked variant replaces every mention of the law's title, short name and aliases in the news with 该法,
so only content can link them. Baseline: rank-bm25 BM25Okapi over the same segmented text, query = law title + first
2,000 characters (the README's reference set-up).

Speed: one article matched against 1,000 open profiles (ProfileIndex.match, including analysis of the article)
beside BM25Okapi scoring the same article against the same 1,000 policy texts.

Reads ../shared/data relative to the repository; says so and exits 2 when it is absent.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rank_bm25 import BM25Okapi  # noqa: E402

from search.analysis import tokenize  # noqa: E402
from search.linking import (  # noqa: E402
    AnalysedArticle,
    BackgroundStats,
    InterestProfile,
    ProfileIndex,
    analyse_article,
    build_profile,
    expand_with_feedback,
    score_article,
)

DATA = REPO.parent / "shared" / "data"
LINKING = DATA / "linking"
MASK = "该法"
BASELINE_QUERY_CHARS = 2000
FEEDBACK_ARTICLES = 5  # best-matching existing articles fed back into a new policy's profile
_CLAUSE_START = re.compile(r"^第[一二三四五六七八九十百千零〇两]+条[\s\u3000]*")
_HEADING = re.compile(r"^第[一二三四五六七八九十百千零〇两]+[编章节][\s\u3000]")


def split_clauses(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(title, [(clause number, clause text)]) of a law laid out as title line, then 第X条 paragraphs."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title, clauses = lines[0], []
    for line in lines[1:]:
        start = _CLAUSE_START.match(line)
        if start:
            clauses.append([start.group(0).strip(), line[start.end() :]])
        elif _HEADING.match(line) or not clauses:
            continue
        else:
            clauses[-1][1] += "\n" + line
    return title, [(number, body) for number, body in clauses]


def load_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def names_of(law: dict) -> list[str]:
    names = {law["title"], law["short_name"], *law.get("aliases", [])}
    return sorted((name for name in names if name), key=len, reverse=True)


def mask(text: str, names: list[str]) -> str:
    for name in names:  # longest first, so the full title is replaced before the short name inside it
        text = text.replace(name, MASK)
    return text


def metrics(ranking: list[str], relevant: set[str]) -> tuple[float, float, float]:
    top5 = sum(1 for item in ranking[:5] if item in relevant) / 5
    recall20 = sum(1 for item in ranking[:20] if item in relevant) / len(relevant)
    mrr = next((1.0 / rank for rank, item in enumerate(ranking, start=1) if item in relevant), 0.0)
    return top5, recall20, mrr


def rank_by(scores: dict[str, float], item_ids: list[str]) -> list[str]:
    return sorted(item_ids, key=lambda item_id: (-scores.get(item_id, 0.0), item_id))


def bm25_scores(bm25: BM25Okapi, query_tokens: list[str], item_ids: list[str]) -> dict[str, float]:
    # Same sum as bm25.get_scores(query_tokens), computed once per distinct token (times its count) for speed.
    counts: dict[str, int] = defaultdict(int)
    for token in query_tokens:
        counts[token] += 1
    total = None
    for token, count in counts.items():
        scores = bm25.get_scores([token]) * count
        total = scores if total is None else total + scores
    return dict(zip(item_ids, total.tolist(), strict=True))


class Corpus:
    def __init__(self, items: list[dict]):
        self.items = items
        self.ids = [item["item_id"] for item in items]
        self.position = {item_id: position for position, item_id in enumerate(self.ids)}
        started = time.perf_counter()
        self.analysed = [
            analyse_article(item["title"], item["body"], article_id=item["item_id"], published=item["date"])
            for item in items
        ]
        self.bm25_tokens = [self.bm25_tokenize(item["title"], item["body"]) for item in items]
        self.analysis_seconds = time.perf_counter() - started
        self.average_length = statistics.fmean(article.length for article in self.analysed) or 1.0
        self.bm25 = BM25Okapi(self.bm25_tokens, k1=1.2, b=0.75)
        self.background = BackgroundStats.from_documents(f"{item['title']}\n{item['body']}" for item in items)

    @staticmethod
    def bm25_tokenize(title: str, body: str) -> list[str]:
        return tokenize(f"{title}\n{body}", drop_stopwords=False)

    def masked_positions(self, names: list[str]) -> list[int]:
        return [
            position
            for position, item in enumerate(self.items)
            if any(name in item["title"] or name in item["body"] for name in names)
        ]


def linker_scores(
    corpus: Corpus, profiles: dict[str, InterestProfile], masked_articles: dict[str, dict[str, AnalysedArticle]]
) -> dict[str, dict[str, float]]:
    """Score of every (law, item) pair: one ProfileIndex pass over the corpus, then the masked items re-scored."""
    index = ProfileIndex(average_article_length=corpus.average_length)
    for profile in profiles.values():
        index.add(profile)
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for article in corpus.analysed:
        for policy_id, score in index.scores(article).items():
            scores[policy_id][article.article_id] = score
    for policy_id, articles in masked_articles.items():
        for item_id, article in articles.items():
            scores[policy_id][item_id] = score_article(profiles[policy_id], article, corpus.average_length).score
    return scores


def evaluate(corpus: Corpus, laws: list[dict], labels: list[dict], masked: bool) -> dict[str, dict[str, list[float]]]:
    """Per-law metrics of our linker (with and without feedback) and BM25 on one variant, for two relevance levels."""
    relevant = {2: defaultdict(set), 1: defaultdict(set)}
    for label in labels:
        relevant[1][label["policy_id"]].add(label["item_id"])
        if label["grade"] >= 2:
            relevant[2][label["policy_id"]].add(label["item_id"])
    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    profiles, masked_articles = {}, {}
    for law in laws:
        title, clauses = split_clauses(law["text"])
        profiles[law["policy_id"]] = build_profile(
            law["policy_id"], 1, title, clauses, aliases=law.get("aliases", []), background=corpus.background,
            dates=[law["publish_date"]],
        )
        if masked:
            names = names_of(law)
            masked_articles[law["policy_id"]] = {
                corpus.items[position]["item_id"]: analyse_article(
                    mask(corpus.items[position]["title"], names),
                    mask(corpus.items[position]["body"], names),
                    article_id=corpus.items[position]["item_id"],
                    published=corpus.items[position]["date"],
                )
                for position in corpus.masked_positions(names)
            }
    first_pass = linker_scores(corpus, profiles, masked_articles)
    # The policy opens: its best-matching existing coverage teaches the profile the news' wording.
    expanded = {}
    for policy_id, profile in profiles.items():
        top_ids = rank_by(first_pass[policy_id], corpus.ids)[:FEEDBACK_ARTICLES]
        top_articles = [
            masked_articles.get(policy_id, {}).get(item_id) or corpus.analysed[corpus.position[item_id]]
            for item_id in top_ids
        ]
        expanded[policy_id] = expand_with_feedback(profile, top_articles, corpus.background)
    second_pass = linker_scores(corpus, expanded, masked_articles)

    for law in laws:
        policy_id = law["policy_id"]
        swapped = {}
        for item_id in masked_articles.get(policy_id, {}):
            position = corpus.position[item_id]
            item = corpus.items[position]
            names = names_of(law)
            tokens = corpus.bm25_tokenize(mask(item["title"], names), mask(item["body"], names))
            swapped[position] = (corpus.bm25.doc_freqs[position], corpus.bm25.doc_len[position])
            frequencies: dict[str, int] = defaultdict(int)
            for token in tokens:
                frequencies[token] += 1
            # idf stays that of the unmasked corpus: a handful of changed items out of thousands.
            corpus.bm25.doc_freqs[position] = dict(frequencies)
            corpus.bm25.doc_len[position] = len(tokens)
        title, _ = split_clauses(law["text"])
        query = corpus.bm25_tokenize(title, law["text"][len(title) :][:BASELINE_QUERY_CHARS])
        baseline = bm25_scores(corpus.bm25, query, corpus.ids)
        for position, (doc_freqs, doc_len) in swapped.items():
            corpus.bm25.doc_freqs[position], corpus.bm25.doc_len[position] = doc_freqs, doc_len

        rankings = {
            "ours": rank_by(first_pass[policy_id], corpus.ids),
            "ours + feedback": rank_by(second_pass[policy_id], corpus.ids),
            "bm25": rank_by(baseline, corpus.ids),
        }
        for grade in (2, 1):
            judged = relevant[grade][policy_id]
            if not judged:
                continue
            for name, ranking in rankings.items():
                for metric, value in zip(("P@5", "R@20", "MRR"), metrics(ranking, judged), strict=True):
                    results[f"grade>={grade}"][f"{name} {metric}"].append(value)
    return results


def print_quality(variant: str, results: dict[str, dict[str, list[float]]]) -> None:
    for relevance, figures in results.items():
        for system in ("ours", "ours + feedback"):
            print(f"  {variant:<13} {relevance:<9} {system:<22}", end="")
            for metric in ("P@5", "R@20", "MRR"):
                ours = statistics.fmean(figures[f"{system} {metric}"])
                baseline = statistics.fmean(figures[f"bm25 {metric}"])
                ratio = ours / baseline if baseline else float("inf")
                print(f"  {metric} {ours:.3f} vs {baseline:.3f} (x{ratio:.2f})", end="")
            print(f"   [{len(figures['ours MRR'])} laws]")


def synthetic_profiles(laws: list[dict], count: int, background: BackgroundStats, seed: int) -> list:
    """``count`` profiles: the laws, State Council documents, and random clause subsets of them as variations."""
    sources = []
    for law in laws:
        title, clauses = split_clauses(law["text"])
        sources.append((title, clauses))
    documents = DATA / "policies" / "zh" / "state_council_docs.jsonl"
    if documents.exists():
        for document in load_jsonl(documents):
            paragraphs = [line.strip() for line in document["content_text"].splitlines() if line.strip()]
            sources.append((document["title"], [(str(n), text) for n, text in enumerate(paragraphs, start=1)]))
    generator = random.Random(seed)
    profiles = []
    for number in range(count):
        title, clauses = sources[number % len(sources)]
        if number >= len(sources):
            keep = max(1, len(clauses) // 2)
            clauses = generator.sample(clauses, keep) if len(clauses) > keep else clauses
        profiles.append(build_profile(f"P{number:05d}", 1, title, clauses, background=background))
    return profiles


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def time_matching(corpus: Corpus, laws: list[dict], n_profiles: int, n_articles: int, seed: int) -> None:
    started = time.perf_counter()
    profiles = synthetic_profiles(laws, n_profiles, corpus.background, seed)
    build_seconds = time.perf_counter() - started
    index = ProfileIndex(average_article_length=corpus.average_length)
    for profile in profiles:
        index.add(profile)
    # Baseline: the same lookup done by BM25 over the profiles' texts (article tokens as the query).
    profile_documents = [
        [term for term, weight in profile.terms.items() for _ in range(max(1, round(weight * 5)))]
        for profile in profiles
    ]
    baseline_index = BM25Okapi(profile_documents, k1=1.2, b=0.75)
    generator = random.Random(seed)
    sample = generator.sample(corpus.items, min(n_articles, len(corpus.items)))
    ours, baseline = [], []
    for item in sample:
        started = time.perf_counter()
        index.match(item["title"], item["body"], top_k=10)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        baseline_index.get_scores(tokenize(f"{item['title']}\n{item['body']}", drop_stopwords=True, search_mode=True))
        baseline.append(time.perf_counter() - started)
    print(
        f"\nMatching one article against {len(index)} open profiles ({len(sample)} articles; "
        f"profiles built in {build_seconds:.1f} s):"
    )
    for label, fraction in (("p50", 0.5), ("p95", 0.95)):
        mine, theirs = percentile(ours, fraction) * 1000, percentile(baseline, fraction) * 1000
        print(
            f"  {label}: ProfileIndex.match {mine:.2f} ms vs BM25Okapi over profile texts {theirs:.2f} ms "
            f"(x{theirs / mine:.1f} faster)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--laws", type=int, default=None, help="evaluate only the first N laws")
    parser.add_argument(
        "--news", type=int, default=None, help="use all judged items plus a random sample of other items, N in all"
    )
    parser.add_argument("--profiles", type=int, default=1000, help="open profiles for the timing run")
    parser.add_argument("--timing-articles", type=int, default=300, help="articles timed against the profiles")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()

    if not LINKING.is_dir():
        print(
            f"linking data set not found at {LINKING} (expected ../shared/data beside the repository)", file=sys.stderr
        )
        return 2
    laws = load_jsonl(LINKING / "policies_dev.jsonl")[: args.laws]
    law_ids = {law["policy_id"] for law in laws}
    labels = [label for label in load_jsonl(LINKING / "labels_dev.jsonl") if label["policy_id"] in law_ids]
    items = load_jsonl(LINKING / "news_items.jsonl")
    if args.news is not None and args.news < len(items):
        judged = {label["item_id"] for label in labels}
        keep = [item for item in items if item["item_id"] in judged]
        others = [item for item in items if item["item_id"] not in judged]
        keep += random.Random(args.seed).sample(others, max(0, min(len(others), args.news - len(keep))))
        items = keep

    started = time.perf_counter()
    corpus = Corpus(items)
    print(
        f"{len(laws)} laws, {len(items)} news items, {len(labels)} judged pairs; "
        f"analysis of the news {corpus.analysis_seconds:.1f} s (mean length {corpus.average_length:.0f} tokens), set-up {time.perf_counter() - started:.1f} s"
    )
    if not args.skip_quality:
        print("\nQuality (ours vs plain BM25, macro over laws):")
        for variant, masked in (("plain", False), ("title-masked", True)):
            print_quality(variant, evaluate(corpus, laws, labels, masked))
    if not args.skip_timing:
        time_matching(corpus, laws, args.profiles, args.timing_articles, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

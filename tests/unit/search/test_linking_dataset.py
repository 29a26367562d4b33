"""Quality check of the linker on a slice of the shared linking set (../shared/data/linking): it must rank news
about a law better than plain BM25 does. Quality only; speed is measured in bench/linking.py."""

import json
import random
import re
from collections import Counter

import pytest
from rank_bm25 import BM25Okapi

from search.analysis import tokenize
from search.linking import BackgroundStats, ProfileIndex, analyse_article, build_profile

pytestmark = pytest.mark.dataset

N_LAWS = 8
N_OTHER_ITEMS = 2500
MIN_GRADE = 2  # the item names the law (masked away in the title-masked variant)
_CLAUSE = re.compile(r"^第[一二三四五六七八九十百千零〇两]+条")


def read_jsonl(path):
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def clauses_of(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    clauses = []
    for line in lines[1:]:
        start = _CLAUSE.match(line)
        if start:
            clauses.append((start.group(0), line[start.end() :]))
        elif clauses and not line.startswith("第"):
            clauses[-1] = (clauses[-1][0], clauses[-1][1] + line)
    return lines[0], clauses


def reciprocal_rank(scores, relevant):
    ranking = sorted(scores, key=lambda item_id: (-scores[item_id], item_id))
    return next((1.0 / rank for rank, item_id in enumerate(ranking, start=1) if item_id in relevant), 0.0)


@pytest.fixture(scope="module")
def linking_slice(shared_data):
    folder = shared_data / "linking"
    if not (folder / "news_items.jsonl").exists():
        pytest.skip(f"{folder} has no linking data set")
    laws = read_jsonl(folder / "policies_dev.jsonl")[:N_LAWS]
    law_ids = {law["policy_id"] for law in laws}
    labels = [label for label in read_jsonl(folder / "labels_dev.jsonl") if label["policy_id"] in law_ids]
    judged = {label["item_id"] for label in labels}
    items = read_jsonl(folder / "news_items.jsonl")
    others = [item for item in items if item["item_id"] not in judged]
    items = [item for item in items if item["item_id"] in judged] + random.Random(3).sample(others, N_OTHER_ITEMS)
    return laws, labels, items


def mean_reciprocal_ranks(laws, labels, items, grade=MIN_GRADE):
    """MRR of our linker and of BM25Okapi (query: law title + first 2,000 characters), macro over the laws."""
    background = BackgroundStats.from_documents(f"{item['title']}\n{item['body']}" for item in items)
    analysed = [analyse_article(item["title"], item["body"], article_id=item["item_id"]) for item in items]
    bm25 = BM25Okapi([tokenize(f"{item['title']}\n{item['body']}", drop_stopwords=False) for item in items])
    ours, baseline = [], []
    for law in laws:
        relevant = {
            label["item_id"] for label in labels if label["policy_id"] == law["policy_id"] and label["grade"] >= grade
        }
        title, clauses = clauses_of(law["text"])
        index = ProfileIndex()
        index.add(build_profile(law["policy_id"], 1, title, clauses, aliases=law["aliases"], background=background))
        our_scores = {article.article_id: index.scores(article).get(law["policy_id"], 0.0) for article in analysed}
        query = Counter(tokenize(f"{title}\n{law['text'][len(title) :][:2000]}", drop_stopwords=False))
        totals = sum(bm25.get_scores([token]) * count for token, count in query.items())
        baseline_scores = {item["item_id"]: float(score) for item, score in zip(items, totals, strict=True)}
        ours.append(reciprocal_rank(our_scores, relevant))
        baseline.append(reciprocal_rank(baseline_scores, relevant))
    return sum(ours) / len(ours), sum(baseline) / len(baseline)


def test_linker_ranks_news_naming_a_law_better_than_plain_bm25(linking_slice):
    ours, baseline = mean_reciprocal_ranks(*linking_slice)
    assert ours > baseline

"""Rebuilding the index walks every public policy, clause, comment, reply, explanation and article, page by page."""
import datetime as dt

from search import sources

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


class FakeConsultation:
    """Plain stand-in for the consultation RPC surface (the real service is exercised in tests/e2e)."""

    def __init__(self, policies=3, comments_per_policy=2):
        self.policies = [self._detail(i) for i in range(1, policies + 1)]
        self.comments_per_policy = comments_per_policy

    @staticmethod
    def _detail(policy_id):
        return {
            "policy_id": policy_id, "version": 1, "title": f"医保办法{policy_id}", "summary": "", "department": "医保局",
            "topics": ["医保"], "document_number": None, "language": "zh", "state": "open",
            "published_at": NOW, "preamble": "", "url_path": f"/policies/{policy_id}",
            "clauses": [{"number": 1, "label": "第一条", "text": "第一条内容"}, {"number": 2, "label": "第二条", "text": "第二条内容"}],
        }

    def list_policies(self, payload, actor):
        start = (payload["page"] - 1) * payload["page_size"]
        items = [{"policy_id": p["policy_id"]} for p in self.policies[start:start + payload["page_size"]]]
        return {"items": items, "total": len(self.policies)}

    def get_policy(self, payload, actor):
        return self.policies[payload["policy_id"] - 1]

    def list_public_comments(self, payload, actor):
        items = [{"comment_id": payload["policy_id"] * 100 + n, "policy_id": payload["policy_id"], "clause_number": 1,
                  "stance": "support", "text": "支持", "language": "zh", "created_at": NOW,
                  "replies": [{"reply_id": payload["policy_id"] * 100 + n, "text": "感谢", "author_name": "医保局", "created_at": NOW}] if n == 0 else []}
                 for n in range(self.comments_per_policy)]
        return {"items": items if payload["page"] == 1 else [], "total": len(items)}

    def list_explanations(self, payload, actor):
        return [{"explanation_id": payload["policy_id"], "policy_id": payload["policy_id"], "title": "解读",
                 "body_html": "<p>政策<strong>解读</strong></p>", "url": None, "outlet": None, "language": "zh",
                 "published_at": NOW}]


class FakeNewsfeed:
    def __init__(self, articles=1200):
        self.articles = [{"id": f"a{n:05d}", "version": 1, "title": f"新闻{n}", "text": "正文", "summary": "",
                          "url": f"https://news.example/{n}", "language": "zh", "outlet": "日报",
                          "published_at": NOW, "categories": []} for n in range(articles)]

    def list_articles(self, query):
        after = query.get("after")
        remaining = [a for a in self.articles if after is None or a["id"] > after]
        page = remaining[: query["limit"]]
        return {"items": page, "next_after": page[-1]["id"] if len(remaining) > query["limit"] else None}


def test_every_public_document_of_every_service_is_produced_once():
    documents = list(sources.all_public_documents(FakeConsultation(policies=3), FakeNewsfeed(articles=1200), NOW))
    kinds = {}
    for document in documents:
        kinds[document.doc_type] = kinds.get(document.doc_type, 0) + 1
    assert kinds == {"policy": 3, "clause": 6, "comment": 6, "reply": 3, "explanation": 3, "article": 1200}
    assert len({d.doc_id for d in documents}) == len(documents)


def test_policies_are_walked_across_pages():
    consultation = FakeConsultation(policies=sources.PAGE_SIZE + 5, comments_per_policy=0)
    documents = list(sources.consultation_documents(consultation, NOW))
    assert sum(1 for d in documents if d.doc_type == "policy") == sources.PAGE_SIZE + 5


def test_explanation_text_is_plain_text_of_the_sanitised_html():
    documents = list(sources.consultation_documents(FakeConsultation(policies=1, comments_per_policy=0), NOW))
    explanation = next(d for d in documents if d.doc_type == "explanation")
    assert "<" not in explanation.body and "政策解读" in explanation.body.replace(" ", "")

"""Small builders of feed documents and fetch results for newsfeed tests."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from newsfeed.fetch import FetchResult


@dataclass
class Item:
    title: str = "市医保局就门诊报销新规征求意见"
    link: str | None = "https://news.example.cn/2026/01/yibao.html"
    guid: str | None = None
    description: str = "<p>草案拟将普通门诊报销比例提高到<b>60%</b>，年度限额提高到3000元。</p>"
    pub_date: str | None = "Tue, 06 Jan 2026 10:00:00 +0800"
    author: str | None = None
    categories: list[str] = field(default_factory=list)
    content_encoded: str | None = None


def make_item(**overrides) -> Item:
    return Item(**overrides)


def rss(items: list[Item], title: str = "示例日报", language: str | None = "zh-cn", encoding: str = "utf-8",
        declared_encoding: str | None = None, link: str = "https://news.example.cn/") -> bytes:
    """An RSS 2.0 document encoded with `encoding` but declaring `declared_encoding` (default: the same)."""
    parts = [f'<?xml version="1.0" encoding="{declared_encoding or encoding}"?>',
             '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>',
             f"<title>{escape(title)}</title><link>{escape(link)}</link>"]
    if language:
        parts.append(f"<language>{language}</language>")
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item.title)}</title>")
        if item.link:
            parts.append(f"<link>{escape(item.link)}</link>")
        if item.guid:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        parts.append(f"<description>{escape(item.description)}</description>")
        if item.content_encoded:
            parts.append(f"<content:encoded><![CDATA[{item.content_encoded}]]></content:encoded>")
        if item.pub_date:
            parts.append(f"<pubDate>{item.pub_date}</pubDate>")
        if item.author:
            parts.append(f"<author>{escape(item.author)}</author>")
        for category in item.categories:
            parts.append(f"<category>{escape(category)}</category>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode(encoding)


def atom(entries: list[dict], title: str = "City Cycling News", lang: str = "en") -> bytes:
    parts = ['<?xml version="1.0" encoding="utf-8"?>',
             f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}"><title>{escape(title)}</title>',
             '<id>urn:example:feed</id><updated>2026-01-10T08:00:00Z</updated>']
    for entry in entries:
        parts.append("<entry>")
        parts.append(f"<id>{escape(entry.get('id', 'urn:example:1'))}</id>")
        parts.append(f"<title type=\"{entry.get('title_type', 'text')}\">{escape(entry.get('title', 'Bike lanes'))}</title>")
        if entry.get("link"):
            parts.append(f'<link rel="alternate" href="{escape(entry["link"])}"/>')
        parts.append(f"<updated>{entry.get('updated', '2026-01-10T08:00:00Z')}</updated>")
        if entry.get("published"):
            parts.append(f"<published>{entry['published']}</published>")
        if entry.get("content") is not None:
            parts.append(f"<content type=\"{entry.get('content_type', 'html')}\">{escape(entry['content'])}</content>")
        if entry.get("author"):
            parts.append(f"<author><name>{escape(entry['author'])}</name></author>")
        parts.append("</entry>")
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")


def json_feed(items: list[dict], title: str = "Demo JSON Feed", version: str = "https://jsonfeed.org/version/1.1",
              language: str | None = None) -> bytes:
    document = {"version": version, "title": title, "home_page_url": "https://example.org/", "items": items}
    if language:
        document["language"] = language
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def fetch_ok(url: str, content: bytes, headers: dict | None = None, etag: str | None = None, **fields) -> FetchResult:
    return FetchResult(url=url, final_url=url, status=200, content=content,
                       headers={"content-type": "application/rss+xml", **(headers or {})}, etag=etag, **fields)


def fetch_not_modified(url: str, etag: str | None = None) -> FetchResult:
    return FetchResult(url=url, final_url=url, status=304, not_modified=True, etag=etag)


def fetch_failed(url: str, status: int | None = 500, error: str | None = None, retry_after: float | None = None
                 ) -> FetchResult:
    return FetchResult(url=url, final_url=url, status=status, error=error or f"HTTP {status}", retry_after=retry_after)


class ScriptedFetcher:
    """Stands in for newsfeed.fetch.Fetcher in unit tests (which run without network): answers each URL with the
    queued results in order, repeating the last one, and records the conditional headers it was sent."""

    def __init__(self, answers: dict[str, list[FetchResult] | FetchResult] | None = None):
        self.answers: dict[str, list[FetchResult]] = {}
        self.calls: list[tuple[str, str | None, str | None]] = []
        for url, results in (answers or {}).items():
            self.answer(url, results)

    def answer(self, url: str, results) -> None:
        self.answers[url] = list(results) if isinstance(results, list) else [results]

    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        self.calls.append((url, etag, last_modified))
        queue = self.answers.get(url)
        if not queue:
            return FetchResult(url=url, final_url=url, status=404, error="HTTP 404")
        return queue.pop(0) if len(queue) > 1 else queue[0]

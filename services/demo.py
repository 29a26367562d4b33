"""Demo content for `make run`: a staff account, a Chinese and an English draft under consultation, and demo feeds
served by the gateway from deploy/demo/feeds. Idempotent: running it again finds what is there and adds nothing."""
from __future__ import annotations

import datetime as dt

import requests

from services.config import ROOT

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_ROLES = ("admin", "policy_officer", "editor", "moderator")
DEMO_DIR = ROOT / "deploy" / "demo"

DEMO_POLICIES = [
    {
        "file": "outpatient-insurance.zh.txt",
        "title": "职工基本医疗保险门诊费用报销管理办法（征求意见稿）",
        "summary": "提高普通门诊医保报销比例，建立门诊共济保障机制，向社会公开征求意见。",
        "department": "市医疗保障局",
        "topics": ["医保", "医疗"],
        "language": "zh",
    },
    {
        "file": "cycling-lanes.en.txt",
        "title": "Protected Cycling Lanes Policy (consultation draft)",
        "summary": "A five-year plan for a connected network of protected cycling lanes; comment on every section.",
        "department": "City Transport Department",
        "topics": ["transport", "cycling"],
        "language": "en",
    },
]

DEMO_FEEDS = {
    # file name → outlet and language (a feed without a language has it detected per article)
    "jiangcheng-daily.rss.xml": {"outlet": "江城日报", "language": "zh"},
    "metro-evening.atom.xml": {"outlet": "都市晚报", "language": "zh"},
    "riverside-herald.rss.xml": {"outlet": "Riverside Herald", "language": "en"},
    "civic-brief.json": {"outlet": "Civic Brief"},
}


def ensure_demo_user(unit_of_work) -> None:
    from consultation import accounts, commands
    from consultation.exceptions import Conflict

    actor = accounts.Actor(0, "balloon-demo", ("admin",))
    try:
        accounts.create_user(unit_of_work(), commands.CreateUser(DEMO_USER, DEMO_PASSWORD, DEMO_ROLES, "Demo"),
                             actor=actor)
    except Conflict:
        pass  # there already


class DemoClient:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()

    def login(self):
        response = self.http.post(f"{self.base_url}/api/v1/auth/token",
                                  json={"username": DEMO_USER, "password": DEMO_PASSWORD}, timeout=30)
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['token']}"

    def call(self, method, path, **kwargs):
        response = self.http.request(method, f"{self.base_url}{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"demo set-up: {method} {path} → {response.status_code} {response.text[:300]}")
        return response.json()


DEMO_SITE_KEY = "demo-news-site"
DEMO_SITE_THEME = {"--tb-accent": "#7a1f1f", "--tb-focus": "#b35c00"}


def _demo_site_origins(base_url: str) -> list[str]:
    """The demo site's origin and, on this machine, its loopback twin (localhost ↔ 127.0.0.1): the demo pages load
    the widget from the twin so the iframe is cross-origin, as on a real news site."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    origins = [f"{parts.scheme}://{parts.netloc}".lower()]
    twin = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}.get(parts.hostname or "")
    if twin:
        origins.append(f"{parts.scheme}://{twin}{f':{parts.port}' if parts.port else ''}")
    return origins


def ensure_demo_site_key(client) -> dict:
    """The site key the demo news site embeds the widget with, allowing exactly the demo site's origins. Idempotent:
    an existing key gets its origins brought up to date (the port may differ between runs)."""
    origins = _demo_site_origins(client.base_url)
    existing = {item["key"]: item for item in client.call("GET", "/api/v1/staff/site-keys")}
    current = existing.get(DEMO_SITE_KEY)
    if current is None:
        return client.call("POST", "/api/v1/staff/site-keys", json={
            "key": DEMO_SITE_KEY, "name": "Demo news site", "allowed_origins": origins, "theme": DEMO_SITE_THEME})
    if sorted(current["allowed_origins"]) != sorted(origins) or not current.get("enabled", True):
        return client.call("PATCH", f"/api/v1/staff/site-keys/{DEMO_SITE_KEY}",
                           json={"allowed_origins": origins, "enabled": True})
    return current


def load_demo(base_url: str, config: dict, unit_of_work=None) -> str:
    if unit_of_work is None:
        from services.cli import _consultation_uow

        unit_of_work = _consultation_uow()
    ensure_demo_user(unit_of_work)
    client = DemoClient(base_url)
    client.login()
    existing = {p["title"] for p in client.call("GET", "/api/v1/staff/policies", params={"page_size": 100})["items"]}
    created = []
    for spec in DEMO_POLICIES:
        if spec["title"] in existing:
            continue
        text = (DEMO_DIR / "policies" / spec["file"]).read_text(encoding="utf-8")
        payload = {key: value for key, value in spec.items() if key != "file"}
        policy = client.call("POST", "/api/v1/staff/policies", json={**payload, "text": text})
        close_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
        client.call("POST", f"/api/v1/staff/policies/{policy['policy_id']}/open", json={"close_at": close_at})
        created.append(spec["title"])
    feeds = {feed["url"] for feed in client.call("GET", "/api/v1/staff/feeds")}
    added_feeds = 0
    for path in sorted((DEMO_DIR / "feeds").glob("*")):
        url = f"{base_url}/demo/feeds/{path.name}"
        if url in feeds or path.name.startswith("."):
            continue
        client.call("POST", "/api/v1/staff/feeds", json={"url": url, "poll_interval_s": 300, **DEMO_FEEDS.get(path.name, {})})
        added_feeds += 1
    ensure_demo_site_key(client)
    return (f"demo content: {len(created)} policies and {added_feeds} feeds added "
            f"({len(existing)} policies were there already)")

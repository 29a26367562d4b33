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
    # file name → outlet and language (files without an entry are added with defaults)
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
    return (f"demo content: {len(created)} policies and {added_feeds} feeds added "
            f"({len(existing)} policies were there already)")

"""The widget's per-process render cache: hits, TTL, invalidation by scope, single-flight misses and placeholders."""
import eventlet
import pytest

from services.gateway.widget_cache import Page, RenderCache, placeholder


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_cache(**overrides):
    clock = FakeClock()
    return RenderCache(**{"ttl_s": 30.0, "max_entries": 100, "clock": clock, **overrides}), clock


def test_second_request_for_the_same_key_is_served_without_rendering():
    cache, _ = make_cache()
    renders = []
    for _ in range(3):
        value = cache.get_or_render("k", "policy-1", lambda: renders.append(1) or "html")
    assert value == "html" and len(renders) == 1 and cache.hits == 2


def test_entry_expires_after_its_ttl():
    cache, clock = make_cache()
    cache.put("k", "s", "old")
    clock.now += 31
    assert cache.get("k") is None


def test_invalidating_a_scope_drops_only_its_entries():
    cache, _ = make_cache()
    cache.put(("p", 1, "zh"), 1, "a")
    cache.put(("p", 1, "en"), 1, "b")
    cache.put(("p", 2, "zh"), 2, "c")
    assert cache.invalidate(1) == 2
    assert cache.get(("p", 1, "zh")) is None and cache.get(("p", 2, "zh")) == "c"


def test_render_that_started_before_an_invalidation_is_not_stored():
    cache, _ = make_cache()

    def render():
        cache.invalidate("s")  # the event arrives while the page is being rendered from older data
        return "stale"

    assert cache.get_or_render("k", "s", render) == "stale"
    assert cache.get("k") is None


def test_clear_discards_renders_in_flight_for_any_scope():
    cache, _ = make_cache()

    def render():
        cache.clear()
        return "stale"

    cache.get_or_render("k", "never-seen-scope", render)
    assert cache.get("k") is None


def test_concurrent_misses_for_one_key_render_once():
    cache, _ = make_cache()
    renders = []

    def render():
        renders.append(1)
        eventlet.sleep(0.05)
        return "html"

    pool = eventlet.GreenPool(20)
    results = list(pool.imap(lambda _: cache.get_or_render("k", "s", render), range(20)))
    assert results == ["html"] * 20 and len(renders) == 1


def test_failed_render_is_raised_to_every_waiter_and_not_cached():
    cache, _ = make_cache()

    def render():
        eventlet.sleep(0.02)
        raise RuntimeError("backing service down")

    pool = eventlet.GreenPool(5)
    threads = [pool.spawn(cache.get_or_render, "k", "s", render) for _ in range(5)]
    for thread in threads:
        with pytest.raises(RuntimeError):
            thread.wait()
    assert cache.get("k") is None


def test_least_recently_used_entry_goes_first_when_full():
    cache, _ = make_cache(max_entries=2)
    cache.put("a", "s", 1)
    cache.put("b", "s", 2)
    cache.get("a")
    cache.put("c", "s", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_page_fills_placeholders_per_reader_without_touching_the_rest():
    page = Page.from_html(f"<input value=\"{placeholder('csrf')}\"><p>x</p><i>{placeholder('page_token')}</i>",
                          {"X-A": "1"})
    assert page.placeholders == ("csrf", "page_token")
    assert page.body({"csrf": "T1", "page_token": "P1"}) == '<input value="T1"><p>x</p><i>P1</i>'
    assert page.body({"csrf": "T2", "page_token": "P2"}) == '<input value="T2"><p>x</p><i>P2</i>'
    assert dict(page.headers) == {"X-A": "1"}


def test_gzip_copy_decompresses_to_the_same_page_for_each_reader():
    import gzip

    html = "<!doctype html>" + "<p>第一条 为提高保障水平。</p>" * 300 + f"<i>{placeholder('csrf')}</i>" + "尾" * 100 \
        + f"<b>{placeholder('page_token')}</b>"
    page = Page.from_html(html)
    for values in ({"csrf": "A" * 40, "page_token": "p1"}, {"csrf": "B" * 70000, "page_token": ""}):
        assert gzip.decompress(page.gzip_body(values)) == page.body(values).encode()
        assert page.body_bytes(values) == page.body(values).encode()
    assert len(page.gzip_body({"csrf": "x", "page_token": "y"})) < len(page.body_bytes({})) / 5

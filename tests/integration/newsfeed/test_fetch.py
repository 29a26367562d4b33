"""The feed fetcher against a real HTTP server on 127.0.0.1 (tests/integration/newsfeed/httpserver.py)."""
import gzip
import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

import newsfeed.fetch as fetch_module
from newsfeed.fetch import Fetcher, FetchPolicy, FetchResult, human_size, is_public_address, parse_retry_after
from tests.integration.newsfeed import httpserver

feed_server = httpserver.feed_server  # the fixture, made visible to this module's tests

RSS = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Demo</title>'
    b"<item><title>\xe5\x8c\xbb\xe4\xbf\x9d\xe6\x94\xb9\xe9\x9d\xa9</title><link>https://example.org/1</link></item>"
    b"</channel></rss>"
)
ETAG = '"feed-v1"'
LAST_MODIFIED = "Wed, 25 Nov 2026 08:00:00 GMT"


def make_policy(**overrides) -> FetchPolicy:
    """Short timeouts so that failure cases finish quickly."""
    fields = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 10.0}
    fields.update(overrides)
    return FetchPolicy(**fields)


@pytest.fixture
def fetcher():
    with Fetcher(make_policy()) as fetcher:
        yield fetcher


def fetch_with(policy: FetchPolicy, url: str, **kwargs) -> FetchResult:
    with Fetcher(policy) as fetcher:
        return fetcher.fetch(url, **kwargs)


# -- plain and conditional GET ----------------------------------------------------------------------------------------


def test_feed_is_returned_with_headers_and_validators(fetcher, feed_server):
    feed_server.serve("/feed.xml", RSS, etag=ETAG, last_modified=LAST_MODIFIED)
    url = feed_server.url("/feed.xml")

    result = fetcher.fetch(url)

    assert result.ok
    assert result.error is None
    assert result.status == 200
    assert result.content == RSS
    assert result.url == result.final_url == url
    assert result.permanent_redirect_to is None
    assert result.not_modified is False
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert result.etag == ETAG
    assert result.last_modified == LAST_MODIFIED
    assert result.elapsed >= 0


def test_user_agent_accept_and_accept_encoding_are_sent(fetcher, feed_server):
    feed_server.serve("/feed.xml", RSS)

    fetcher.fetch(feed_server.url("/feed.xml"))

    (request,) = feed_server.requests_to("/feed.xml")
    assert request.headers["user-agent"] == FetchPolicy().user_agent
    assert request.headers["accept"].startswith("application/rss+xml")
    assert "gzip" in request.headers["accept-encoding"]
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers


def test_stored_etag_is_sent_and_304_is_reported_as_not_modified(fetcher, feed_server):
    feed_server.serve("/feed.xml", RSS, etag=ETAG)
    first = fetcher.fetch(feed_server.url("/feed.xml"))

    second = fetcher.fetch(feed_server.url("/feed.xml"), etag=first.etag)

    assert feed_server.requests_to("/feed.xml")[1].headers["if-none-match"] == ETAG
    assert second.status == 304
    assert second.not_modified is True
    assert second.content is None
    assert second.error is None
    assert second.ok is False
    assert second.etag == ETAG


def test_stored_last_modified_is_sent_and_304_is_reported_as_not_modified(fetcher, feed_server):
    feed_server.serve("/feed.xml", RSS, last_modified=LAST_MODIFIED)
    first = fetcher.fetch(feed_server.url("/feed.xml"))

    second = fetcher.fetch(feed_server.url("/feed.xml"), last_modified=first.last_modified)

    assert feed_server.requests_to("/feed.xml")[1].headers["if-modified-since"] == LAST_MODIFIED
    assert second.not_modified is True
    assert second.content is None
    assert second.last_modified == LAST_MODIFIED


def test_validators_sent_are_echoed_when_a_304_omits_them(fetcher, feed_server):
    feed_server.add("/feed.xml", status=304)

    result = fetcher.fetch(feed_server.url("/feed.xml"), etag=ETAG, last_modified=LAST_MODIFIED)

    assert result.not_modified is True
    assert (result.etag, result.last_modified) == (ETAG, LAST_MODIFIED)


def test_changed_feed_is_fetched_in_full_despite_an_old_etag(fetcher, feed_server):
    feed_server.serve("/feed.xml", RSS, etag='"feed-v2"')

    result = fetcher.fetch(feed_server.url("/feed.xml"), etag=ETAG)

    assert result.not_modified is False
    assert result.content == RSS
    assert result.etag == '"feed-v2"'


def test_etag_with_non_ascii_bytes_round_trips_to_a_304(fetcher, feed_server):
    feed_server.serve("/feed.xml", RSS, etag='"caf\xe9"')
    first = fetcher.fetch(feed_server.url("/feed.xml"))

    second = fetcher.fetch(feed_server.url("/feed.xml"), etag=first.etag)

    assert first.etag == '"caf\xe9"'
    assert second.not_modified is True


@pytest.mark.parametrize("stored_etag", ['"line\nbreak"', '"中文"'])
def test_unsendable_stored_validator_is_dropped_and_the_feed_fetched_in_full(fetcher, feed_server, stored_etag):
    feed_server.serve("/feed.xml", RSS, etag=ETAG)

    result = fetcher.fetch(feed_server.url("/feed.xml"), etag=stored_etag, last_modified=LAST_MODIFIED)

    assert result.ok
    (request,) = feed_server.requests_to("/feed.xml")
    assert "if-none-match" not in request.headers
    assert request.headers["if-modified-since"] == LAST_MODIFIED


def test_gzip_encoded_body_is_decompressed(fetcher, feed_server):
    body = RSS * 50
    feed_server.serve("/feed.xml", body, gzip=True)

    result = fetcher.fetch(feed_server.url("/feed.xml"))

    assert feed_server.bytes_sent("/feed.xml") == len(gzip.compress(body)) < len(body)
    assert result.headers["content-encoding"] == "gzip"
    assert result.content == body


# -- redirects --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_is_reported_so_the_stored_url_can_move(fetcher, feed_server, status):
    feed_server.redirect("/old.xml", feed_server.url("/feed.xml"), status=status)
    feed_server.serve("/feed.xml", RSS)

    result = fetcher.fetch(feed_server.url("/old.xml"))

    assert result.ok
    assert result.content == RSS
    assert result.url == feed_server.url("/old.xml")
    assert result.final_url == feed_server.url("/feed.xml")
    assert result.permanent_redirect_to == feed_server.url("/feed.xml")


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_is_followed_but_not_reported_as_permanent(fetcher, feed_server, status):
    feed_server.redirect("/today.xml", "/feed.xml", status=status)
    feed_server.serve("/feed.xml", RSS)

    result = fetcher.fetch(feed_server.url("/today.xml"))

    assert result.ok
    assert result.final_url == feed_server.url("/feed.xml")
    assert result.permanent_redirect_to is None


def test_relative_redirect_location_is_resolved_against_the_requested_url(fetcher, feed_server):
    feed_server.redirect("/a/old.xml", "../b/feed.xml", status=301)
    feed_server.serve("/b/feed.xml", RSS)

    result = fetcher.fetch(feed_server.url("/a/old.xml"))

    assert result.content == RSS
    assert result.permanent_redirect_to == feed_server.url("/b/feed.xml")


def test_permanent_chain_moves_the_feed_only_as_far_as_the_first_temporary_hop(fetcher, feed_server):
    feed_server.redirect("/one", "/two", status=301)
    feed_server.redirect("/two", "/three", status=308)
    feed_server.redirect("/three", "/feed.xml", status=302)
    feed_server.serve("/feed.xml", RSS)

    result = fetcher.fetch(feed_server.url("/one"))

    assert result.final_url == feed_server.url("/feed.xml")
    assert result.permanent_redirect_to == feed_server.url("/three")


def test_permanent_redirect_after_a_temporary_one_does_not_move_the_feed(fetcher, feed_server):
    feed_server.redirect("/campaign", "/old.xml", status=302)
    feed_server.redirect("/old.xml", "/feed.xml", status=301)
    feed_server.serve("/feed.xml", RSS)

    result = fetcher.fetch(feed_server.url("/campaign"))

    assert result.ok
    assert result.permanent_redirect_to is None


def test_permanent_redirect_to_a_missing_page_does_not_move_the_feed(fetcher, feed_server):
    feed_server.redirect("/old.xml", "/gone.xml", status=301)

    result = fetcher.fetch(feed_server.url("/old.xml"))

    assert result.status == 404
    assert result.error == "HTTP 404"
    assert result.permanent_redirect_to is None


def test_redirect_loop_ends_with_too_many_redirects(feed_server):
    feed_server.redirect("/ping", "/pong", status=302)
    feed_server.redirect("/pong", "/ping", status=302)

    result = fetch_with(make_policy(max_redirects=3), feed_server.url("/ping"))

    assert result.error == "too many redirects (more than 3)"
    assert len(feed_server.requests) == 4
    assert result.content is None


def test_redirect_to_a_non_http_scheme_is_refused(fetcher, feed_server):
    feed_server.redirect("/feed.xml", "file:///etc/passwd", status=302)

    result = fetcher.fetch(feed_server.url("/feed.xml"))

    assert result.error.startswith("unsupported URL scheme 'file'")
    assert result.content is None


# -- HTTP errors and Retry-After ---------------------------------------------------------------------------------------


def test_429_retry_after_in_seconds_is_parsed(fetcher, feed_server):
    feed_server.error("/feed.xml", 429, retry_after="120")

    result = fetcher.fetch(feed_server.url("/feed.xml"))

    assert result.status == 429
    assert result.error == "HTTP 429"
    assert result.retry_after == 120.0
    assert result.content is None
    assert result.ok is False


def test_429_retry_after_as_http_date_is_parsed_against_the_server_date(fetcher, feed_server):
    # The test server stamps its own Date header, so the date is relative to that (within the seconds' rounding).
    later = datetime.now(UTC) + timedelta(seconds=300)
    feed_server.error("/feed.xml", 429, retry_after=format_datetime(later, usegmt=True))

    result = fetcher.fetch(feed_server.url("/feed.xml"))

    assert result.error == "HTTP 429"
    assert 297 <= result.retry_after <= 301


def test_503_with_retry_after_in_the_past_means_retry_now(fetcher, feed_server):
    feed_server.error("/feed.xml", 503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")

    result = fetcher.fetch(feed_server.url("/feed.xml"))

    assert result.error == "HTTP 503"
    assert result.retry_after == 0.0


def test_500_is_reported_as_an_error_without_content(fetcher, feed_server):
    feed_server.error("/feed.xml", 500, body=b"<html>stack trace</html>")

    result = fetcher.fetch(feed_server.url("/feed.xml"))

    assert result.status == 500
    assert result.error == "HTTP 500"
    assert result.content is None
    assert result.retry_after is None
    assert result.ok is False


# -- timeouts -----------------------------------------------------------------------------------------------------------


def test_server_silent_before_answering_gives_a_timeout(feed_server):
    feed_server.serve("/feed.xml", RSS, delay_before_headers=1.0)

    result = fetch_with(make_policy(read_timeout=0.2), feed_server.url("/feed.xml"))

    assert result.error == "timeout (reading)"
    assert result.status is None
    assert result.content is None


def test_server_stalling_in_the_middle_of_the_body_gives_a_timeout(feed_server):
    feed_server.serve("/feed.xml", RSS * 10, chunk_size=len(RSS), delay_between_chunks=1.0)

    result = fetch_with(make_policy(read_timeout=0.2), feed_server.url("/feed.xml"))

    assert result.error == "timeout (reading)"
    assert result.content is None


def test_server_trickling_a_body_is_cut_off_by_the_total_timeout(feed_server):
    body = RSS * 20
    feed_server.serve("/feed.xml", body, chunk_size=16, delay_between_chunks=0.02)

    result = fetch_with(make_policy(read_timeout=1.0, total_timeout=0.3), feed_server.url("/feed.xml"))

    assert result.error == "timeout (whole fetch took over 0.3 s)"
    assert result.content is None
    assert feed_server.bytes_sent("/feed.xml") < len(body)


def test_whole_fetch_deadline_is_measured_with_the_injected_clock(feed_server):
    feed_server.serve("/feed.xml", RSS)
    readings = iter([0.0, 100.0, 100.0, 100.0, 100.0])

    with Fetcher(make_policy(total_timeout=10.0), clock=lambda: next(readings)) as fetcher:
        result = fetcher.fetch(feed_server.url("/feed.xml"))

    assert result.error == "timeout (whole fetch took over 10 s)"
    assert result.elapsed == 100.0
    assert feed_server.requests == []


# -- body size cap -----------------------------------------------------------------------------------------------------

CAP = 64 * 1024
HUGE = 50 * 1024 * 1024


def test_large_content_length_is_refused_before_reading_the_body(feed_server):
    feed_server.serve("/feed.xml", b"", filler_bytes=HUGE)

    result = fetch_with(make_policy(max_body_bytes=CAP), feed_server.url("/feed.xml"))

    assert result.error == f"body exceeds 64 KB (Content-Length {HUGE})"
    assert result.status == 200
    assert result.content is None
    assert result.ok is False
    assert feed_server.bytes_sent("/feed.xml") < HUGE


def test_oversize_body_of_unknown_length_is_cut_off_at_the_cap(feed_server):
    feed_server.serve("/feed.xml", b"", filler_bytes=HUGE, send_content_length=False)

    result = fetch_with(make_policy(max_body_bytes=CAP), feed_server.url("/feed.xml"))

    assert result.error == "body exceeds 64 KB"
    assert result.content is None
    assert feed_server.bytes_sent("/feed.xml") < HUGE


def test_body_lying_about_its_length_is_cut_off_at_the_cap(feed_server):
    feed_server.serve("/feed.xml", b"", filler_bytes=HUGE, declared_length=1000)

    result = fetch_with(make_policy(max_body_bytes=CAP), feed_server.url("/feed.xml"))

    # h11 stops at the declared 1000 bytes, so the body is small and complete as far as HTTP is concerned.
    assert result.ok
    assert len(result.content) == 1000


def test_compression_bomb_is_stopped_by_the_decompressed_size_cap(feed_server):
    feed_server.serve("/feed.xml", b"\0" * (8 * 1024 * 1024), gzip=True)

    result = fetch_with(make_policy(max_body_bytes=CAP), feed_server.url("/feed.xml"))

    assert result.error == "body exceeds 64 KB"
    assert result.content is None


def test_body_exactly_at_the_cap_is_accepted(feed_server):
    feed_server.serve("/feed.xml", b"y" * CAP, send_content_length=False)

    result = fetch_with(make_policy(max_body_bytes=CAP), feed_server.url("/feed.xml"))

    assert result.ok
    assert len(result.content) == CAP


def test_default_cap_reads_as_ten_megabytes():
    assert human_size(FetchPolicy().max_body_bytes) == "10 MB"
    assert human_size(1000) == "1000 bytes"


# -- network errors and refused URLs -------------------------------------------------------------------------------------


@pytest.fixture
def closed_port():
    """A port bound but not listening on 127.0.0.1, so connecting to it is refused and nobody else can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_connection_refused_is_reported_not_raised(fetcher, closed_port):
    result = fetcher.fetch(f"http://127.0.0.1:{closed_port}/feed.xml")

    assert result.error == "connection refused"
    assert result.status is None
    assert result.content is None
    assert result.ok is False


def test_network_failure_after_a_redirect_reports_no_status(fetcher, feed_server, closed_port):
    feed_server.redirect("/feed.xml", f"http://127.0.0.1:{closed_port}/feed.xml", status=301)

    result = fetcher.fetch(feed_server.url("/feed.xml"))

    assert result.error == "connection refused"
    assert result.status is None
    assert result.final_url == f"http://127.0.0.1:{closed_port}/feed.xml"
    assert result.permanent_redirect_to is None


def test_unknown_host_is_reported_not_raised(fetcher):
    result = fetcher.fetch("http://no-such-host.invalid/feed.xml")

    assert result.error == "DNS lookup failed"


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("file:///etc/passwd", "file"),
        ("ftp://127.0.0.1/feed.xml", "ftp"),
        ("gopher://127.0.0.1:70/", "gopher"),
        ("feed.xml", "(none)"),
    ],
)
def test_non_http_urls_are_refused_without_a_request(fetcher, feed_server, url, scheme):
    result = fetcher.fetch(url)

    assert result.error == f"unsupported URL scheme '{scheme}': only http and https are fetched"
    assert result.status is None
    assert feed_server.requests == []


@pytest.mark.parametrize("url", ["http://[::1/feed.xml", "http:///feed.xml", "http://127.0.0.1:99999/feed.xml"])
def test_malformed_url_is_reported_not_raised(fetcher, url):
    result = fetcher.fetch(url)

    assert result.error.startswith("invalid URL")


# -- SSRF guard --------------------------------------------------------------------------------------------------------


def test_private_addresses_are_refused_when_the_guard_is_on(feed_server):
    feed_server.serve("/feed.xml", RSS)

    result = fetch_with(make_policy(allow_private_addresses=False), feed_server.url("/feed.xml", host="localhost"))

    assert result.error == "refused: localhost resolves to non-public address 127.0.0.1"
    assert feed_server.requests == []


def test_private_addresses_are_fetched_by_default_for_local_demo_feeds(fetcher, feed_server):
    feed_server.serve("/feed.xml", RSS)

    assert fetcher.fetch(feed_server.url("/feed.xml")).ok


def test_redirect_to_a_private_address_is_refused_when_the_guard_is_on(feed_server, monkeypatch):
    # DNS cannot be made to point a public-looking name at this machine here, so the resolver is stood in for.
    monkeypatch.setattr(fetch_module, "_resolve_host_addresses", lambda host, port: ["93.184.215.14"])
    feed_server.serve("/feed.xml", RSS)

    result = fetch_with(make_policy(allow_private_addresses=False), feed_server.url("/feed.xml"))

    # The resolution check passed; the address actually connected to is what gets the request refused.
    assert result.error == "refused: connected to non-public address 127.0.0.1"
    assert result.content is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::6810:84e5", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
    ],
)
def test_address_classification_for_the_ssrf_guard(address, public):
    assert is_public_address(address) is public


# -- per-host concurrency -----------------------------------------------------------------------------------------------


def fetch_all_at_once(fetcher: Fetcher, urls: list[str]) -> list[FetchResult]:
    results: list[FetchResult | None] = [None] * len(urls)

    def fetch_one(index: int) -> None:
        results[index] = fetcher.fetch(urls[index])

    threads = [threading.Thread(target=fetch_one, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_requests_to_one_host_never_exceed_the_per_host_limit(feed_server):
    feed_server.serve("/feed.xml", RSS, hold_seconds=0.4)

    with Fetcher(make_policy(per_host_concurrency=2)) as fetcher:
        results = fetch_all_at_once(fetcher, [feed_server.url("/feed.xml")] * 6)

    assert all(result.ok for result in results)
    assert feed_server.max_in_flight() == 2


def test_requests_to_one_host_run_in_parallel_up_to_a_higher_limit(feed_server):
    # Shows the server's counter does see parallel requests, so the limit test above can fail.
    feed_server.serve("/feed.xml", RSS, hold_seconds=0.4)

    with Fetcher(make_policy(per_host_concurrency=6)) as fetcher:
        results = fetch_all_at_once(fetcher, [feed_server.url("/feed.xml")] * 6)

    assert all(result.ok for result in results)
    assert feed_server.max_in_flight() == 6


def test_per_host_limit_applies_to_each_host_separately(feed_server):
    feed_server.serve("/feed.xml", RSS, hold_seconds=0.4)
    urls = [feed_server.url("/feed.xml", host="127.0.0.1"), feed_server.url("/feed.xml", host="localhost")] * 3

    with Fetcher(make_policy(per_host_concurrency=2)) as fetcher:
        results = fetch_all_at_once(fetcher, urls)

    assert all(result.ok for result in results)
    assert feed_server.max_in_flight(f"127.0.0.1:{feed_server.port}") == 2
    assert feed_server.max_in_flight(f"localhost:{feed_server.port}") == 2
    assert feed_server.max_in_flight_overall() == 4


def test_a_client_passed_in_is_left_open_for_its_owner(feed_server):
    import httpx

    feed_server.serve("/feed.xml", RSS)
    with httpx.Client() as client:
        fetcher = Fetcher(make_policy(), client=client)
        fetcher.close()

        assert fetcher.fetch(feed_server.url("/feed.xml")).ok
        assert feed_server.requests_to("/feed.xml")[0].headers["user-agent"] == FetchPolicy().user_agent


# -- Retry-After parsing -----------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 26, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Thu, 26 Nov 2026 08:02:00 GMT", 120.0),
        ("Thu, 26 Nov 2026 07:00:00 GMT", 0.0),
        ("-5", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


# -- under eventlet, as in the service ---------------------------------------------------------------------------------

PATCHED_PROCESS_SCRIPT = """
import eventlet
eventlet.monkey_patch()
import socket, sys
from newsfeed.fetch import Fetcher
from tests.integration.newsfeed.httpserver import FeedServer
server = FeedServer().start()
server.serve("/feed.xml", b"<rss/>")
with Fetcher() as fetcher:
    result = fetcher.fetch(server.url("/feed.xml"))
server.stop()
print(result.ok, result.content, socket.socket.__name__, "trio" in sys.modules)
"""


def test_fetcher_works_in_a_process_patched_by_eventlet_before_anything_is_imported():
    # pytest's plugins import trio before tests/conftest.py patches eventlet, hiding python-trio/trio#3015 in this
    # process; `nameko run` patches first, so a fresh process is the faithful check.
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PATCHED_PROCESS_SCRIPT],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["True", "b'<rss/>'", "GreenSocket", "True"]

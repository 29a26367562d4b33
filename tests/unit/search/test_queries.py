"""Search parameters become a validated SearchQuery, or a clear error per bad parameter."""
from datetime import UTC, datetime

import pytest

from search.queries import InvalidSearchQuery, QueryText, SearchQuery, parse_query_text, parse_search_params


def errors_of(params):
    with pytest.raises(InvalidSearchQuery) as error:
        parse_search_params(params)
    return error.value.errors


def test_empty_parameters_give_the_default_query():
    query = parse_search_params({})
    assert query == SearchQuery()
    assert (query.page, query.per_page, query.sort) == (1, 20, "relevance")


def test_a_browse_without_text_is_sorted_by_date():
    assert parse_search_params({}).effective_sort == "date"
    assert parse_search_params({"q": "医保"}).effective_sort == "relevance"


def test_quoted_phrases_are_kept_whole_and_other_words_stay_free():
    assert parse_query_text('"医疗保障 改革" 房价') == QueryText(("医疗保障改革",), "房价")


def test_chinese_quotes_mark_phrases_too():
    assert parse_query_text("“个人所得税” 专项扣除").phrases == ("个人所得税",)


def test_spaces_between_english_words_of_a_phrase_are_kept():
    assert parse_query_text('"health insurance" reform') == QueryText(("health insurance",), "reform")


def test_an_unpaired_quote_is_ignored():
    assert parse_query_text('医保 "改革') == QueryText((), "医保 改革")


def test_all_filters_are_read():
    query = parse_search_params({
        "q": "医保", "doc_type": "policy,clause", "department": "国家医保局", "topic": "health", "policy_id": "12",
        "consultation_state": "open", "outlet": "人民日报", "language": "zh", "sort": "date", "page": "2",
        "per_page": "50",
    })
    filters = query.filters
    assert filters.doc_type == ("policy", "clause")
    assert filters.keyword_filters() == {
        "department": "国家医保局", "topics": "health", "policy_id": "12", "consultation_state": "open",
        "outlet": "人民日报", "language": "zh",
    }
    assert (query.sort, query.page, query.per_page, query.offset) == ("date", 2, 50, 50)


def test_multi_dict_values_are_accepted_as_lists():
    query = parse_search_params({"q": ["房价"], "doc_type": ["article", "comment"]})
    assert query.text == "房价" and query.filters.doc_type == ("article", "comment")


def test_a_plain_date_range_covers_whole_days_in_beijing_time():
    query = parse_search_params({"date_from": "2026-01-12", "date_to": "2026-01-15"})
    assert query.filters.date_from == datetime(2026, 1, 11, 16, 0, tzinfo=UTC)
    assert query.filters.date_to == datetime(2026, 1, 15, 16, 0, tzinfo=UTC)


def test_a_date_time_bound_keeps_its_offset():
    query = parse_search_params({"date_from": "2026-01-12T08:00:00+08:00"})
    assert query.filters.date_from == datetime(2026, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "popularity"}, "sort"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2026-02-30"}, "date_from"),
        ({"date_to": "2026-01-01T08:00:00"}, "date_to"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "date_to"),
        ({"page": "0"}, "page"),
        ({"page": "-3"}, "page"),
        ({"page": "two"}, "page"),
        ({"per_page": "101"}, "per_page"),
        ({"per_page": "0"}, "per_page"),
        ({"page": "200", "per_page": "100"}, "page"),
        ({"q": "医" * 501}, "q"),
        ({"doc_type": "memo"}, "doc_type"),
        ({"language": "fr"}, "language"),
        ({"policy_id": "1 OR 1=1"}, "policy_id"),
        ({"department": "x" * 201}, "department"),
        ({"q": ["a", "b"]}, "q"),
        ({"per-page": "5"}, "per-page"),
    ],
)
def test_a_bad_parameter_is_reported_by_name(params, field):
    assert field in errors_of(params)


def test_every_bad_parameter_is_reported_at_once():
    assert set(errors_of({"sort": "x", "page": "0", "per_page": "1000"})) == {"sort", "page", "per_page"}


def test_a_query_of_exactly_500_characters_is_accepted():
    assert len(parse_search_params({"q": "医" * 500}).text) == 500


def test_control_characters_in_the_query_become_spaces():
    assert parse_search_params({"q": "医保\x00房价"}).text == "医保 房价"


def test_a_non_mapping_is_rejected():
    with pytest.raises(InvalidSearchQuery):
        parse_search_params(["q", "医保"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"per_page": 0}, "per_page"), ({"per_page": 101}, "per_page"), ({"page": 0}, "page"),
     ({"sort": "random"}, "sort"), ({"text": "x" * 501}, "q")],
)
def test_a_query_built_in_code_gets_the_same_limits(kwargs, field):
    with pytest.raises(InvalidSearchQuery) as error:
        SearchQuery(**kwargs)
    assert field in error.value.errors

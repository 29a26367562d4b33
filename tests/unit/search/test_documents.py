"""Search documents: one definition per public type, and a builder that lets nothing private through."""
from datetime import UTC, datetime, timedelta, timezone

import pytest

from search.backends.embedded import EmbeddedSearchBackend
from search.documents import (
    DOCUMENT_DEFINITIONS,
    DOCUMENT_TYPES,
    ENVELOPE_FIELDS,
    FACET_FIELDS,
    FieldType,
    InvalidDocument,
    NotPublic,
    PersonalDataRefused,
    all_field_specs,
    build_document,
    document_from_source,
)
from search.queries import SearchQuery


def make_values(doc_type="article", **overrides):
    values = {
        "version": 1,
        "title": "医保报销新规",
        "body": "门诊报销比例提高。",
        "url": "https://example.org/a",
        "published_at": datetime(2026, 1, 10, 9, 30, tzinfo=UTC),
    }
    if doc_type == "article":
        values.update(doc_id="article:abc", outlet="人民日报")
    elif doc_type == "comment":
        values.update(doc_id="comment:1", policy_id="12", status="approved")
    elif doc_type in ("policy", "clause", "explanation", "reply"):
        values.update(policy_id="12")
        if doc_type == "policy":
            values["department"] = "国家医保局"
        if doc_type == "clause":
            values["clause_number"] = 3
        if doc_type in ("explanation", "reply"):
            values["doc_id"] = f"{doc_type}:7"
    values.update(overrides)
    return values


def make_document(doc_type="article", **overrides):
    return build_document(doc_type, make_values(doc_type, **overrides))


def test_the_six_public_document_types_are_defined():
    assert set(DOCUMENT_TYPES) == {"policy", "clause", "explanation", "article", "comment", "reply"}


def test_every_definition_carries_the_common_envelope():
    envelope = {spec.name for spec in ENVELOPE_FIELDS}
    for definition in DOCUMENT_DEFINITIONS.values():
        assert envelope <= definition.field_names, definition.doc_type


def test_a_field_has_one_type_across_all_definitions():
    specs = all_field_specs()
    assert specs["published_at"].type is FieldType.DATE
    assert specs["title"].analysed and specs["body"].analysed
    assert specs["topics"].multi_valued
    assert not specs["url"].analysed


def test_facets_count_fields_declared_facetable():
    specs = all_field_specs()
    for facet, field_name in FACET_FIELDS.items():
        assert specs[field_name].facetable, facet


@pytest.mark.parametrize("doc_type", ["policy", "clause", "explanation", "article", "comment", "reply"])
def test_each_type_builds_from_valid_input(doc_type):
    document = make_document(doc_type)
    assert document.doc_type == doc_type
    assert document.doc_id.startswith(f"{doc_type}:")
    assert document.published_at.tzinfo is not None


def test_policy_id_is_derived_from_the_policy():
    assert make_document("policy").doc_id == "policy:12"


def test_clause_id_combines_policy_and_clause_number():
    assert make_document("clause").doc_id == "clause:12:3"


def test_article_without_id_is_rejected_with_a_field_message():
    values = make_values("article")
    del values["doc_id"]
    with pytest.raises(InvalidDocument) as error:
        build_document("article", values)
    assert "doc_id" in error.value.errors


def test_doc_id_must_name_its_type():
    with pytest.raises(InvalidDocument) as error:
        make_document("article", doc_id="comment:1")
    assert "doc_id" in error.value.errors


@pytest.mark.parametrize("status", ["pending", "rejected", "spam", None, "APPROVED"])
def test_a_comment_that_is_not_approved_is_not_public(status):
    values = make_values("comment", status=status)
    with pytest.raises(NotPublic) as error:
        build_document("comment", values)
    assert "status" in error.value.errors


def test_a_comment_without_status_is_not_public():
    values = make_values("comment")
    del values["status"]
    with pytest.raises(NotPublic):
        build_document("comment", values)


def test_the_status_of_an_approved_comment_is_not_stored():
    assert "status" not in make_document("comment").to_source()


@pytest.mark.parametrize(
    "name",
    ["contact", "phone", "email", "id_number", "contactPhone", "e-mail", "mobile", "idCard", "home_address",
     "contact_email", "wechat", "身份证号", "手机"],
)
def test_a_field_that_looks_like_contact_data_is_refused(name):
    with pytest.raises(PersonalDataRefused) as error:
        build_document("comment", make_values("comment", **{name: "x"}))
    assert name in error.value.errors


@pytest.mark.parametrize(
    "text",
    ["请联系我 13812345678", "手机 138-1234-5678", "邮箱 someone@example.com", "身份证 11010519491231002X"],
)
def test_a_comment_still_carrying_contact_data_is_refused(text):
    with pytest.raises(PersonalDataRefused):
        make_document("comment", body=f"我支持这项改革。{text}")


def test_a_news_article_may_cite_a_public_hotline():
    assert "12345" in make_document("article", body="市民可拨打12345热线咨询。").body


def test_unknown_fields_are_rejected_one_message_each():
    with pytest.raises(InvalidDocument) as error:
        make_document("article", colour="red", size=3)
    assert set(error.value.errors) == {"colour", "size"}


def test_missing_required_fields_are_all_listed():
    with pytest.raises(InvalidDocument) as error:
        build_document("article", {"doc_id": "article:1"})
    assert {"version", "title", "url", "published_at", "outlet"} <= set(error.value.errors)


def test_a_naive_publication_time_is_rejected():
    with pytest.raises(InvalidDocument) as error:
        make_document(published_at=datetime(2026, 1, 1, 8, 0))
    assert "time zone" in error.value.errors["published_at"]


def test_publication_time_is_stored_in_utc():
    beijing = timezone(timedelta(hours=8))
    document = make_document(published_at=datetime(2026, 1, 1, 8, 0, tzinfo=beijing))
    assert document.published_at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert document.to_source()["published_at"] == "2026-01-01T00:00:00.000000Z"


def test_an_iso_string_with_offset_is_accepted_as_publication_time():
    assert make_document(published_at="2026-01-01T08:00:00+08:00").published_at.hour == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("version", "1"), ("version", True), ("version", -1), ("topics", "health"), ("language", "fr"),
     ("title", 42), ("clause_number", 2.5), ("policy_id", "12; DROP TABLE")],
)
def test_wrongly_typed_values_get_a_field_message(field, value):
    doc_type = "clause" if field == "clause_number" else "article"
    with pytest.raises(InvalidDocument) as error:
        make_document(doc_type, **{field: value})
    assert field in error.value.errors


def test_unknown_doc_type_is_rejected():
    with pytest.raises(InvalidDocument) as error:
        build_document("memo", {})
    assert "doc_type" in error.value.errors


def test_language_is_detected_when_not_given():
    assert make_document().language == "zh"
    assert make_document(title="Housing reform", body="Prices fall.").language == "en"


def test_a_stored_source_rebuilds_the_same_document():
    document = make_document("comment", stance="support", topics=["health", "health", "pension"])
    assert document.topics == ("health", "pension")
    assert document_from_source(document.to_source()) == document


def test_no_pending_comment_and_no_contact_data_can_reach_the_index():
    backend = EmbeddedSearchBackend(":memory:")
    backend.ensure_schema()
    attempts = [
        lambda: make_document("comment", status="pending", body="待审核的意见"),
        lambda: make_document("comment", status="rejected", body="被驳回的意见"),
        lambda: make_document("comment", body="联系我 13912345678"),
        lambda: make_document("comment", body="写信到 citizen@example.com"),
        lambda: make_document("comment", phone="13912345678"),
        lambda: make_document("article", contact_email="editor@example.com"),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidDocument):
            backend.upsert([attempt()])
    backend.upsert([make_document("comment", body="公开的意见")])
    assert backend.count() == 1
    for text in ("待审核", "驳回", "13912345678", "citizen", "example.com"):
        assert backend.search(SearchQuery(text=text)).total == 0, text

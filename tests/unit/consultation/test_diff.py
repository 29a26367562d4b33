from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from consultation.diff import ChangeKind, TextSegment, diff_clauses, diff_text
from consultation.parsing import int_to_chinese_numeral

BASE_TEXTS = [
    "为了规范城市公共自行车的运营和使用，根据有关法律法规，制定本办法。",
    "本办法适用于本市行政区域内公共自行车的规划、建设、运营和管理。",
    "市交通运输主管部门负责公共自行车的统筹协调和监督管理工作。",
    "运营单位应当建立车辆巡检制度，及时维修和更换损坏的车辆。",
    "使用人应当遵守道路交通安全法律法规，文明骑行，不得损坏车辆。",
    "运营单位收取的押金应当专户存储，不得挪作他用。",
    "本办法自2026年1月1日起施行。",
]


@dataclass(frozen=True)
class FakeClause:
    number: int
    label: str
    text: str


def make_clauses(texts):
    return [FakeClause(n, f"第{int_to_chinese_numeral(n)}条", text) for n, text in enumerate(texts, start=1)]


def kinds(changes):
    return [(change.kind, change.old_number, change.new_number) for change in changes]


def test_identical_versions_are_all_unchanged():
    clauses = make_clauses(BASE_TEXTS)

    changes = diff_clauses(clauses, clauses)

    assert kinds(changes) == [(ChangeKind.UNCHANGED, n, n) for n in range(1, 8)]
    assert all(change.text_diff == (TextSegment("equal", change.new_text),) for change in changes)


def test_clause_inserted_in_the_middle_renumbers_later_clauses_without_changing_them():
    inserted = "鼓励运营单位使用新能源调度车辆，减少碳排放。"
    new_texts = BASE_TEXTS[:3] + [inserted] + BASE_TEXTS[3:]

    changes = diff_clauses(make_clauses(BASE_TEXTS), make_clauses(new_texts))

    assert kinds(changes) == [
        (ChangeKind.UNCHANGED, 1, 1),
        (ChangeKind.UNCHANGED, 2, 2),
        (ChangeKind.UNCHANGED, 3, 3),
        (ChangeKind.ADDED, None, 4),
        (ChangeKind.RENUMBERED, 4, 5),
        (ChangeKind.RENUMBERED, 5, 6),
        (ChangeKind.RENUMBERED, 6, 7),
        (ChangeKind.RENUMBERED, 7, 8),
    ]
    assert changes[3].text_diff == (TextSegment("insert", inserted),)
    assert changes[4].new_label == "第五条" and changes[4].old_label == "第四条"
    assert not changes[4].text_changed


def test_deleted_clause_is_reported_where_it_stood():
    new_texts = BASE_TEXTS[:1] + BASE_TEXTS[2:]

    changes = diff_clauses(make_clauses(BASE_TEXTS), make_clauses(new_texts))

    assert kinds(changes) == [
        (ChangeKind.UNCHANGED, 1, 1),
        (ChangeKind.REMOVED, 2, None),
        (ChangeKind.RENUMBERED, 3, 2),
        (ChangeKind.RENUMBERED, 4, 3),
        (ChangeKind.RENUMBERED, 5, 4),
        (ChangeKind.RENUMBERED, 6, 5),
        (ChangeKind.RENUMBERED, 7, 6),
    ]
    assert changes[1].text_diff == (TextSegment("delete", BASE_TEXTS[1]),)


def test_edited_clause_is_changed_with_a_character_level_diff():
    new_texts = list(BASE_TEXTS)
    new_texts[5] = "运营单位收取的押金应当由银行专户存储，不得挪作他用。"

    changes = diff_clauses(make_clauses(BASE_TEXTS), make_clauses(new_texts))

    assert [change.kind for change in changes].count(ChangeKind.UNCHANGED) == 6
    edited = changes[5]
    assert (edited.kind, edited.old_number, edited.new_number) == (ChangeKind.CHANGED, 6, 6)
    assert edited.text_diff == (
        TextSegment("equal", "运营单位收取的押金应当"),
        TextSegment("insert", "由银行"),
        TextSegment("equal", "专户存储，不得挪作他用。"),
    )


def test_heavily_rewritten_clause_in_place_is_changed_not_removed_and_added():
    new_texts = list(BASE_TEXTS)
    new_texts[3] = "运营单位应当每日巡检车辆，发现损坏的应当在二十四小时内完成维修。"

    changes = diff_clauses(make_clauses(BASE_TEXTS), make_clauses(new_texts))

    assert kinds(changes)[3] == (ChangeKind.CHANGED, 4, 4)
    assert len(changes) == 7


def test_unrelated_replacement_is_reported_as_removed_and_added():
    new_texts = list(BASE_TEXTS)
    new_texts[3] = "Electric scooters are out of scope."

    changes = diff_clauses(make_clauses(BASE_TEXTS), make_clauses(new_texts))

    assert [kind for kind in kinds(changes) if kind[0] != ChangeKind.UNCHANGED] == [
        (ChangeKind.REMOVED, 4, None),
        (ChangeKind.ADDED, None, 4),
    ]


def test_reordered_clause_is_reported_as_moved():
    new_texts = [BASE_TEXTS[0], BASE_TEXTS[5], *BASE_TEXTS[1:5], BASE_TEXTS[6]]

    changes = diff_clauses(make_clauses(BASE_TEXTS), make_clauses(new_texts))

    assert kinds(changes) == [
        (ChangeKind.UNCHANGED, 1, 1),
        (ChangeKind.MOVED, 6, 2),
        (ChangeKind.RENUMBERED, 2, 3),
        (ChangeKind.RENUMBERED, 3, 4),
        (ChangeKind.RENUMBERED, 4, 5),
        (ChangeKind.RENUMBERED, 5, 6),
        (ChangeKind.UNCHANGED, 7, 7),
    ]


def test_whitespace_only_difference_is_not_an_edit():
    old = make_clauses(["本办法自2026年1月1日起施行。"])
    new = make_clauses(["本办法自2026年1月1日起施行。 \n"])

    assert kinds(diff_clauses(old, new)) == [(ChangeKind.UNCHANGED, 1, 1)]


def test_english_clauses_are_diffed_word_by_word():
    old = [FakeClause(1, "Article 1", "The city shall build cycle lanes within five years.")]
    new = [FakeClause(1, "Article 1", "The city shall build protected cycle lanes within three years.")]

    (change,) = diff_clauses(old, new)

    assert change.kind == ChangeKind.CHANGED
    assert change.text_diff == (
        TextSegment("equal", "The city shall build "),
        TextSegment("insert", "protected "),
        TextSegment("equal", "cycle lanes within "),
        TextSegment("delete", "five"),
        TextSegment("insert", "three"),
        TextSegment("equal", " years."),
    )


def test_empty_versions_give_only_additions_or_removals():
    clauses = make_clauses(BASE_TEXTS[:2])

    assert kinds(diff_clauses([], clauses)) == [(ChangeKind.ADDED, None, 1), (ChangeKind.ADDED, None, 2)]
    assert kinds(diff_clauses(clauses, [])) == [(ChangeKind.REMOVED, 1, None), (ChangeKind.REMOVED, 2, None)]
    assert diff_clauses([], []) == []


def rebuild(segments, keep):
    return "".join(segment.text for segment in segments if segment.op in keep)


@given(st.text(max_size=60), st.text(max_size=60), st.sampled_from(["zh", "en", None]))
@settings(max_examples=200, deadline=None)  # speed is for bench/, not for tests
def test_text_diff_rebuilds_both_versions(old, new, language):
    segments = diff_text(old, new, language)

    assert rebuild(segments, {"equal", "delete"}) == old
    assert rebuild(segments, {"equal", "insert"}) == new
    assert all(segment.text for segment in segments)


@given(st.lists(st.sampled_from(BASE_TEXTS), unique=True), st.lists(st.sampled_from(BASE_TEXTS), unique=True))
@settings(max_examples=100, deadline=None)  # speed is for bench/, not for tests
def test_every_clause_of_both_versions_appears_exactly_once(old_texts, new_texts):
    changes = diff_clauses(make_clauses(old_texts), make_clauses(new_texts))

    assert sorted(c.old_number for c in changes if c.old_number is not None) == list(range(1, len(old_texts) + 1))
    assert [c.new_number for c in changes if c.new_number is not None] == list(range(1, len(new_texts) + 1))
    assert all(c.kind != ChangeKind.CHANGED for c in changes)  # texts are either identical or unrelated


def test_repeated_identical_clauses_are_paired_in_order():
    deleted = "（本条删除）"
    old_texts = [BASE_TEXTS[0], deleted, BASE_TEXTS[1], deleted, BASE_TEXTS[2]]
    new_texts = [BASE_TEXTS[0], deleted, BASE_TEXTS[3], BASE_TEXTS[1], deleted, BASE_TEXTS[2]]

    changes = diff_clauses(make_clauses(old_texts), make_clauses(new_texts))

    assert kinds(changes) == [
        (ChangeKind.UNCHANGED, 1, 1),
        (ChangeKind.UNCHANGED, 2, 2),
        (ChangeKind.ADDED, None, 3),
        (ChangeKind.RENUMBERED, 3, 4),
        (ChangeKind.RENUMBERED, 4, 5),
        (ChangeKind.RENUMBERED, 5, 6),
    ]


def test_large_revision_with_one_insert_keeps_every_later_clause_unchanged_in_text():
    old_texts = [f"第{n}项规定：{BASE_TEXTS[n % 7]}" for n in range(200)]
    new_texts = old_texts[:120] + ["新增条款：建立公共自行车信用评价制度。"] + old_texts[120:]

    changes = diff_clauses(make_clauses(old_texts), make_clauses(new_texts))

    assert [change.kind for change in changes].count(ChangeKind.RENUMBERED) == 80
    assert [change.kind for change in changes].count(ChangeKind.UNCHANGED) == 120
    assert [change.new_number for change in changes if change.kind == ChangeKind.ADDED] == [121]

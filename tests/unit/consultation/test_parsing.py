import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consultation.parsing import (
    chinese_numeral_to_int,
    detect_language,
    int_to_chinese_numeral,
    parse_draft,
)

ZH_DRAFT = (
    "某市城市公共自行车管理办法（征求意见稿）\n"
    "　　为规范公共自行车管理，现征求意见。\n"
    "第一章　总　　则\n"
    "第一条　为了规范公共自行车的使用，根据有关法律，制定本办法。\n"
    "第二条　本办法适用于本市行政区域。\n"
    "　　前款所称行政区域，依照本办法第一条规定确定。\n"
    "第二章　运营管理\n"
    "第一节　一般规定\n"
    "第三条　运营单位应当按照本办法第二条的要求维护车辆。\n"
    "第四条　本办法自2026年1月1日起施行。\n"
)


def make_zh_clause_lines(count, start=1):
    return "".join(f"第{int_to_chinese_numeral(n)}条　第{n}条的内容。\n" for n in range(start, start + count))


def test_chinese_draft_splits_into_preamble_chapters_and_clauses():
    draft = parse_draft(ZH_DRAFT)

    assert draft.language == "zh"
    assert draft.preamble == "某市城市公共自行车管理办法（征求意见稿）\n　　为规范公共自行车管理，现征求意见。\n"
    assert [chapter.heading for chapter in draft.chapters] == ["第一章 总则", "第二章 运营管理"]
    assert [section.heading for section in draft.sections] == ["第一节 一般规定"]
    assert [clause.number for clause in draft.clauses] == [1, 2, 3, 4]
    assert [clause.label for clause in draft.clauses] == ["第一条", "第二条", "第三条", "第四条"]
    assert draft.clauses[0].text == "为了规范公共自行车的使用，根据有关法律，制定本办法。"
    assert draft.clauses[1].text == "本办法适用于本市行政区域。\n前款所称行政区域，依照本办法第一条规定确定。"
    assert draft.clauses[1].chapter == "第一章 总则"
    assert draft.clauses[2].chapter == "第二章 运营管理"
    assert draft.clauses[2].section == "第一节 一般规定"
    assert draft.clauses[0].section is None
    assert draft.warnings == ()


def test_reference_to_a_clause_inside_a_sentence_is_not_a_new_clause():
    draft = parse_draft("第一条　依照本法第三条规定执行。\n第二条　参照第一条和第二条。\n")

    assert [clause.number for clause in draft.clauses] == [1, 2]
    assert draft.clauses[0].text == "依照本法第三条规定执行。"


def test_reference_wrapped_to_the_start_of_a_line_is_not_a_new_clause():
    draft = parse_draft("第一条　申请人应当依照本办法\n第三条规定的程序提出申请。\n第二条　本办法自公布之日起施行。\n")

    assert [clause.number for clause in draft.clauses] == [1, 2]
    assert draft.clauses[0].text == "申请人应当依照本办法\n第三条规定的程序提出申请。"


def test_clause_heading_directly_followed_by_text_is_recognised_when_it_continues_the_numbering():
    draft = parse_draft("第一条为了规范管理，制定本办法。\n第二条本办法自公布之日起施行。\n")

    assert [(clause.number, clause.text) for clause in draft.clauses] == [
        (1, "为了规范管理，制定本办法。"),
        (2, "本办法自公布之日起施行。"),
    ]


def test_clause_heading_alone_on_its_line_takes_the_following_lines_as_text():
    draft = parse_draft("第一条\n为了规范管理，制定本办法。\n第二条：\n本办法自公布之日起施行。")

    assert [clause.text for clause in draft.clauses] == ["为了规范管理，制定本办法。", "本办法自公布之日起施行。"]


def test_full_width_spaces_and_indentation_before_headings_are_accepted():
    draft = parse_draft("\u3000\u3000第一条\u3000甲。\n \u3000第二条\u3000乙。\n\t第三条 丙。")

    assert [clause.text for clause in draft.clauses] == ["甲。", "乙。", "丙。"]


def test_arabic_and_full_width_clause_numbers_are_read():
    draft = parse_draft("第1条　甲。\n第２条　乙。\n第12条　丙。")

    assert [clause.number for clause in draft.clauses] == [1, 2, 12]
    assert draft.clauses[2].label == "第12条"


def test_clause_numbers_past_one_hundred_are_read():
    text = make_zh_clause_lines(120)

    draft = parse_draft(text)

    assert [clause.number for clause in draft.clauses] == list(range(1, 121))
    assert draft.clauses[100].label == "第一百零一条"
    assert draft.clauses[100].text == "第101条的内容。"
    assert draft.warnings == ()


def test_numbering_gap_is_reported_and_the_clauses_are_kept():
    draft = parse_draft("第一条　甲。\n第二条　乙。\n第五条　丙。\n")

    assert [clause.number for clause in draft.clauses] == [1, 2, 5]
    assert [(warning.code, warning.clause_index) for warning in draft.warnings] == [("numbering_gap", 2)]


def test_duplicate_clause_number_is_reported_and_both_clauses_are_kept():
    draft = parse_draft("第一条　甲。\n第二条　乙。\n第二条　丙。\n第三条　丁。\n")

    assert [clause.text for clause in draft.clauses] == ["甲。", "乙。", "丙。", "丁。"]
    assert [(warning.code, warning.clause_index) for warning in draft.warnings] == [("duplicate_number", 2)]


def test_numbering_that_goes_backwards_is_reported():
    draft = parse_draft("第一条　甲。\n第三条　乙。\n第二条　丙。\n")

    assert [warning.code for warning in draft.warnings] == ["numbering_gap", "numbering_backwards"]


def test_notice_numbered_with_enumerated_parts_splits_into_one_clause_per_part():
    text = (
        "关于推进社区养老服务的意见（征求意见稿）\n"
        "各区人民政府：\n"
        "为推进社区养老服务，现提出如下意见：\n"
        "一、总体要求\n"
        "（一）指导思想。坚持以人民为中心。\n"
        "（二）工作目标。到2027年全面覆盖。\n"
        "二、重点任务\n"
        "推进社区食堂建设，具体分为：一、试点；二、推广。\n"
        "三、保障措施\n"
    )

    draft = parse_draft(text)

    assert draft.preamble.endswith("现提出如下意见：\n")
    assert [(clause.number, clause.label) for clause in draft.clauses] == [(1, "一、"), (2, "二、"), (3, "三、")]
    assert draft.clauses[0].text == "总体要求\n（一）指导思想。坚持以人民为中心。\n（二）工作目标。到2027年全面覆盖。"
    assert draft.warnings == ()


def test_enumerated_list_inside_an_article_does_not_split_it():
    draft = parse_draft("第一条　下列事项应当公开：\n一、预算；\n二、决算。\n第二条　本办法自公布之日起施行。\n")

    assert [clause.number for clause in draft.clauses] == [1, 2]
    assert draft.clauses[0].text == "下列事项应当公开：\n一、预算；\n二、决算。"


def test_enumerated_part_out_of_sequence_stays_in_the_current_part():
    draft = parse_draft("一、总体要求\n内容甲。\n一、子项\n二、重点任务\n内容乙。\n")

    assert [clause.text for clause in draft.clauses] == ["总体要求\n内容甲。\n一、子项", "重点任务\n内容乙。"]


def test_text_between_a_chapter_heading_and_its_first_clause_is_kept_as_the_chapter_intro():
    draft = parse_draft("第一章　总则\n本章规定立法目的。\n第一节　一般规定\n本节适用于全市。\n第一条　甲。\n")

    assert draft.chapters[0].title == "总则"
    assert draft.chapters[0].intro == "本章规定立法目的。"
    assert draft.sections[0].intro == "本节适用于全市。"
    assert draft.clauses[0].chapter == "第一章 总则"
    assert draft.clauses[0].text == "甲。"


def test_english_sections_group_articles():
    draft = parse_draft(
        "Chapter 1 Scope\nSection 1 General rules\nArticle 1. A.\nSection 2 Special rules\nArticle 2. B.\n"
    )

    assert [(clause.label, clause.section) for clause in draft.clauses] == [
        ("Article 1", "Section 1 General rules"),
        ("Article 2", "Section 2 Special rules"),
    ]
    assert [section.chapter for section in draft.sections] == ["Chapter 1 Scope", "Chapter 1 Scope"]


def test_windows_line_endings_are_handled():
    draft = parse_draft("第一条\r\n甲。\r\n第二条　乙。\r\n")

    assert [clause.text for clause in draft.clauses] == ["甲。", "乙。"]


def test_table_of_contents_before_the_first_chapter_stays_in_the_preamble():
    text = (
        "某某条例（草案）\n目录\n第一章　总则\n第二章　附则\n第一章　总则\n第一条　甲。\n第二章　附则\n第二条　乙。\n"
    )

    draft = parse_draft(text)

    assert draft.preamble == "某某条例（草案）\n目录\n第一章　总则\n第二章　附则\n"
    assert [chapter.heading for chapter in draft.chapters] == ["第一章 总则", "第二章 附则"]
    assert [clause.chapter for clause in draft.clauses] == ["第一章 总则", "第二章 附则"]


def test_text_without_clauses_becomes_a_single_clause_with_a_warning():
    draft = parse_draft("关于进一步加强社区养老服务的意见\n各区人民政府：\n现提出如下意见。")

    assert len(draft.clauses) == 1
    assert draft.clauses[0].number == 1
    assert draft.clauses[0].text == "关于进一步加强社区养老服务的意见\n各区人民政府：\n现提出如下意见。"
    assert draft.preamble == ""
    assert [warning.code for warning in draft.warnings] == ["no_clauses"]


def test_empty_text_gives_no_clauses_and_a_warning():
    draft = parse_draft(" \n\u3000\n")

    assert draft.clauses == ()
    assert [warning.code for warning in draft.warnings] == ["empty_text"]


def test_english_articles_with_chapters_are_parsed():
    text = (
        "Draft Urban Cycling Act\n\n"
        "CHAPTER I - GENERAL PROVISIONS\n"
        "Article 1. Purpose\n"
        "This Act promotes cycling.\n"
        "Article 2 Scope\n"
        "Article 1 of the Convention applies here.\n"
        "Chapter 2 Duties\n"
        "Article 3: Cities shall build lanes:\n"
        "1. within five years;\n"
        "2. with public funds.\n"
    )

    draft = parse_draft(text)

    assert draft.language == "en"
    assert draft.preamble == "Draft Urban Cycling Act\n\n"
    assert [(chapter.label, chapter.number, chapter.title) for chapter in draft.chapters] == [
        ("CHAPTER I", 1, "GENERAL PROVISIONS"),
        ("Chapter 2", 2, "Duties"),
    ]
    assert [clause.label for clause in draft.clauses] == ["Article 1", "Article 2", "Article 3"]
    assert draft.clauses[1].text == "Scope\nArticle 1 of the Convention applies here."
    assert draft.clauses[2].text == "Cities shall build lanes:\n1. within five years;\n2. with public funds."
    assert draft.clauses[2].chapter == "Chapter 2 Duties"


@pytest.mark.parametrize(
    ("first", "second", "labels"),
    [
        ("1. Scope.", "2. Duties.", ["1.", "2."]),
        ("1) Scope.", "2) Duties.", ["1)", "2)"]),
        ("Section 1. Scope.", "Section 2. Duties.", ["Section 1", "Section 2"]),
        ("§ 1 Scope.", "§ 2 Duties.", ["§ 1", "§ 2"]),
        ("Article I - Scope.", "Article II - Duties.", ["Article I", "Article II"]),
    ],
)
def test_english_numbering_styles_are_recognised(first, second, labels):
    draft = parse_draft(f"Consultation draft\n{first}\n{second}\n", language="en")

    assert [clause.label for clause in draft.clauses] == labels
    assert [clause.number for clause in draft.clauses] == [1, 2]
    assert [clause.text for clause in draft.clauses] == ["Scope.", "Duties."]


def test_decimal_number_at_line_start_is_not_an_english_clause():
    draft = parse_draft("1. Funding.\nThe budget is\n3.5 million pounds.\n2. Review.\n")

    assert [clause.number for clause in draft.clauses] == [1, 2]
    assert draft.clauses[0].text == "Funding.\nThe budget is\n3.5 million pounds."


def test_language_is_detected_from_the_share_of_chinese_characters():
    assert detect_language("第一条 为了规范 WiFi 热点管理，制定本办法。") == "zh"
    assert detect_language("Article 1. The city of 上海 shall publish the plan.") == "en"
    assert detect_language("") == "zh"


def test_language_can_be_given_with_a_region():
    assert parse_draft("第一条　甲。", language="zh-CN").language == "zh"


def test_unsupported_language_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="unsupported language"):
        parse_draft("第一条　甲。", language="fr")


def test_non_text_input_is_rejected_with_a_clear_error():
    with pytest.raises(TypeError, match="expects str"):
        parse_draft(b"\xe7\xac\xac")


@pytest.mark.parametrize(
    ("numeral", "value"),
    [
        ("一", 1), ("十", 10), ("十一", 11), ("二十", 20), ("九十九", 99), ("一百", 100), ("一百零一", 101),
        ("一百一十", 110), ("一百九十九", 199), ("两百", 200), ("一千零一十", 1010), ("〇", 0), ("零", 0),
        ("二〇二六", 2026), ("12", 12), ("１２", 12), ("一百一", 110), ("一万零一", 10001), ("贰拾", 20),
    ],
)  # fmt: skip
def test_chinese_numerals_are_converted(numeral, value):
    assert chinese_numeral_to_int(numeral) == value


@pytest.mark.parametrize("bad", ["", "第一", "abc", "一二十", "万"])
def test_text_that_is_not_a_numeral_is_rejected(bad):
    with pytest.raises(ValueError):
        chinese_numeral_to_int(bad)


@pytest.mark.parametrize(
    ("value", "numeral"),
    [(1, "一"), (10, "十"), (11, "十一"), (20, "二十"), (101, "一百零一"), (110, "一百一十"), (1001, "一千零一"),
     (10000, "一万"), (10010, "一万零一十"), (0, "零")],
)  # fmt: skip
def test_integers_are_written_as_chinese_numerals(value, numeral):
    assert int_to_chinese_numeral(value) == numeral


def test_negative_integer_has_no_chinese_numeral():
    with pytest.raises(ValueError):
        int_to_chinese_numeral(-1)


@given(st.integers(min_value=1, max_value=9999))
@settings(deadline=None)
def test_chinese_numeral_round_trips(value):
    assert chinese_numeral_to_int(int_to_chinese_numeral(value)) == value


# Clause bodies avoid 第 (headings) and the characters that turn a line-start heading into a cross-reference.
ZH_BODY_LINE = st.text(
    alphabet="本法办公民国家机关应当保障权利义务责任在年内完成工作制定条例，。；（）１2", min_size=1, max_size=30
)
EN_BODY_LINE = st.from_regex(r"[A-Z][a-z]{1,8}( [a-z]{1,8}){0,6}[.;]", fullmatch=True)


@st.composite
def generated_zh_draft(draw):
    clause_texts = draw(st.lists(st.lists(ZH_BODY_LINE, min_size=1, max_size=3), min_size=1, max_size=12))
    separators = st.sampled_from(["\u3000", " ", "：", "", "\n"])
    indents = st.sampled_from(["", "\u3000\u3000", " ", "\t"])
    parts = [draw(st.sampled_from(["", "某市管理办法（征求意见稿）\n", "说明：本稿供讨论。\n"]))]
    for number, lines in enumerate(clause_texts, start=1):
        if draw(st.booleans()) and number % 4 == 1:
            parts.append(f"第{int_to_chinese_numeral(number // 4 + 1)}章　章节标题\n")
        parts.append(f"{draw(indents)}第{int_to_chinese_numeral(number)}条{draw(separators)}{lines[0]}\n")
        parts.extend(f"{draw(indents)}{line}\n" for line in lines[1:])
    return "".join(parts), ["\n".join(lines) for lines in clause_texts]


@given(generated_zh_draft())
@settings(max_examples=150, deadline=None)  # speed is for bench/, not for tests
def test_generated_chinese_draft_reparses_to_its_clauses(draft_and_texts):
    text, clause_texts = draft_and_texts

    draft = parse_draft(text)

    assert [clause.text for clause in draft.clauses] == clause_texts
    assert [clause.number for clause in draft.clauses] == list(range(1, len(clause_texts) + 1))
    assert draft.warnings == ()


@st.composite
def generated_en_draft(draw):
    clause_texts = draw(st.lists(st.lists(EN_BODY_LINE, min_size=1, max_size=3), min_size=1, max_size=10))
    style = draw(st.sampled_from(["Article {n}.", "Section {n}:", "§ {n}.", "{n}.", "{n})"]))
    parts = ["Draft regulation for consultation\n"]
    for number, lines in enumerate(clause_texts, start=1):
        parts.append(f"{style.format(n=number)} {lines[0]}\n")
        parts.extend(f"  {line}\n" for line in lines[1:])
    return "".join(parts), ["\n".join(lines) for lines in clause_texts]


@given(generated_en_draft())
@settings(max_examples=100, deadline=None)  # speed is for bench/, not for tests
def test_generated_english_draft_reparses_to_its_clauses(draft_and_texts):
    text, clause_texts = draft_and_texts

    draft = parse_draft(text, language="en")

    assert [clause.text for clause in draft.clauses] == clause_texts


HEADING_LIKE_TEXT = st.text(alphabet="第一二十百零〇两条章节编 \n\u3000：.12ArticleChapterIV§)（）", max_size=80)


@given(st.one_of(st.text(max_size=200), HEADING_LIKE_TEXT))
@settings(max_examples=300, deadline=None)  # speed is for bench/, not for tests
def test_parse_never_raises_on_arbitrary_text(text):
    draft = parse_draft(text)

    assert draft.language in {"zh", "en"}
    if text.strip():
        assert draft.clauses


def load_state_council_docs(shared_data):
    path = shared_data / "policies" / "zh" / "state_council_docs.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.dataset
def test_state_council_documents_parse_into_consecutive_clauses(shared_data):
    docs = load_state_council_docs(shared_data)
    first_clause_at_line_start = re.compile(r"(?m)^\s*第一条")
    with_clauses = [doc for doc in docs if first_clause_at_line_start.search(doc["content_text"])]
    assert len(with_clauses) >= 3, "expected the regulations with 第一条 at line start"

    for doc in with_clauses:
        draft = parse_draft(doc["content_text"])
        numbers = [clause.number for clause in draft.clauses]
        assert numbers == list(range(1, len(numbers) + 1)), doc["title"]
        assert len(numbers) > 10, doc["title"]
        assert all(clause.label.startswith("第") and clause.text for clause in draft.clauses), doc["title"]
        assert not first_clause_at_line_start.search(draft.preamble), doc["title"]
        assert draft.warnings == (), doc["title"]


@pytest.mark.dataset
def test_every_state_council_document_parses_without_error(shared_data):
    docs = load_state_council_docs(shared_data)

    for doc in docs:
        draft = parse_draft(doc["content_text"])
        assert draft.language == "zh", doc["title"]
        assert draft.clauses, doc["title"]


@pytest.mark.dataset
def test_state_council_notices_with_enumerated_parts_parse_into_consecutive_parts(shared_data):
    docs = load_state_council_docs(shared_data)
    first_part = re.compile(r"(?m)^\s*一、")
    notices = [doc for doc in docs if first_part.search(doc["content_text"]) and "第一条" not in doc["content_text"]]
    assert len(notices) >= 10

    for doc in notices:
        draft = parse_draft(doc["content_text"])
        numbers = [clause.number for clause in draft.clauses]
        assert numbers == list(range(1, len(numbers) + 1)), doc["title"]
        assert draft.clauses[0].label == "一、", doc["title"]

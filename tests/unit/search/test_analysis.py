import sqlite3

import pytest

from search.analysis import STOPWORDS, normalise, segment_for_index, segment_query, tokenize


def fts5_matches(documents: list[str], query: str) -> list[int]:
    """Index ``documents`` the way the embedded backend does and return the rowids matching ``query``."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='unicode61')")
    connection.executemany(
        "INSERT INTO docs(rowid, body) VALUES (?, ?)",
        [(rowid, segment_for_index(text)) for rowid, text in enumerate(documents, start=1)],
    )
    match = " AND ".join(f'"{token}"' for token in segment_query(query))
    rows = connection.execute("SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY rowid", (match,)).fetchall()
    connection.close()
    return [rowid for (rowid,) in rows]


def test_normalise_turns_full_width_letters_and_digits_into_lower_case_half_width():
    assert normalise("ＡＢＣ１２３") == "abc123"


def test_normalise_collapses_whitespace_including_ideographic_space():
    assert normalise("  Hello\u3000\n World\t ") == "hello world"


def test_normalise_rejects_non_text_input_with_a_clear_error():
    with pytest.raises(TypeError, match="must be a str"):
        normalise(None)  # type: ignore[arg-type]


def test_tokenize_keeps_two_character_words_like_yibao_and_fangjia():
    tokens = tokenize("医保报销比例提高，房价保持稳定")
    assert "医保" in tokens
    assert "报销" in tokens
    assert "房价" in tokens


def test_tokenize_drops_punctuation_and_whitespace_tokens():
    tokens = tokenize("医保，房价！  ——“改革”")
    assert all(token.strip() and token not in {"，", "！", "——", "“", "”"} for token in tokens)
    assert tokens == ["医保", "房价", "改革"]


def test_tokenize_keeps_english_words_whole_and_lower_case_in_mixed_text():
    tokens = tokenize("Trial Balloon决策气球支持GDP统计")
    assert "trial" in tokens
    assert "balloon" in tokens
    assert "gdp" in tokens
    assert "决策" in tokens


def test_tokenize_reads_full_width_latin_and_digits_like_half_width():
    assert tokenize("ＧＤＰ增长５％") == tokenize("GDP增长5%")


def test_tokenize_drops_stopwords_by_default_and_keeps_them_on_request():
    assert "的" not in tokenize("医保的报销")
    assert "the" not in tokenize("the policy")
    assert "的" in tokenize("医保的报销", drop_stopwords=False)


def test_stopword_list_covers_both_languages():
    assert {"的", "了", "和", "the", "and", "of"} <= STOPWORDS


def test_tokenize_of_blank_text_is_empty():
    assert tokenize("  \u3000 ") == []


def test_index_text_carries_finer_sub_words_of_long_words():
    indexed = segment_for_index("国家医疗保障局发布通知").split(" ")
    assert {"医疗", "保障", "保障局"} <= set(indexed)


def test_every_query_token_is_also_an_index_token():
    text = "中华人民共和国个人所得税法修正案草案向社会公开征求意见"
    assert set(segment_query(text)) <= set(segment_for_index(text).split(" "))


def test_two_character_query_yibao_matches_a_document_about_yibao_reimbursement_in_fts5():
    documents = ["医保报销比例提高", "房价保持稳定", "医疗保障局发布通知"]
    assert fts5_matches(documents, "医保") == [1]


def test_two_character_query_fangjia_matches_in_fts5():
    documents = ["医保报销比例提高", "一线城市房价保持稳定"]
    assert fts5_matches(documents, "房价") == [2]


def test_part_of_a_long_word_matches_in_fts5():
    documents = ["国家医疗保障局发布通知", "社会保险法"]
    assert fts5_matches(documents, "保障") == [1]
    assert fts5_matches(documents, "医疗") == [1]


def test_mixed_chinese_english_query_matches_full_width_document_in_fts5():
    documents = ["ＡＩ监管条例征求意见", "AI 发展报告"]
    assert fts5_matches(documents, "AI 监管") == [1]

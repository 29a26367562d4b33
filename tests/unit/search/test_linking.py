import json

import pytest

from search.analysis import tokenize
from search.linking import (
    BackgroundStats,
    InterestProfile,
    LinkingError,
    PolicyCorpusStats,
    ProfileIndex,
    analyse_article,
    build_profile,
    expand_with_feedback,
    more_like_this_query,
    percolate_query,
    percolator_index_mapping,
    policy_names,
    profile_to_percolator_document,
    rank_articles_for_policy,
    score_article,
)
from search.synonyms import synonym_table

NEWS_BACKGROUND = [
    "国务院常务会议研究部署经济工作",
    "各地加强安全生产检查",
    "医保报销比例提高 群众看病负担减轻",
    "一线城市房价保持稳定 住房租赁市场平稳",
    "全国人大常委会审议多部法律草案",
    "教育部部署秋季学期开学工作",
    "气象部门发布高温预警",
    "外交部发言人回答记者提问",
]

MEDICAL_CLAUSES = [
    ("第一条", "为了规范医疗保障基金使用，保障参保人员医保待遇，制定本条例。"),
    ("第二条", "医疗保障经办机构负责医保基金的支付和报销结算。参保人员凭医保电子凭证就医。"),
    ("第三条", "定点医药机构不得骗取医保基金。骗取医保基金的，由医疗保障行政部门责令退回，处罚款。"),
    ("第四条", "异地就医直接结算，参保人员在异地定点医疗机构就医的，医保报销按照就医地目录执行。"),
]
HOUSING_CLAUSES = [
    ("1", "城市人民政府应当保持房价基本稳定，增加保障性住房供给。"),
    ("2", "住房租赁企业应当如实发布房源信息，不得哄抬租金。"),
    ("3", "房地产开发企业预售商品房，应当将预售资金存入监管账户。"),
]


@pytest.fixture(scope="module")
def background():
    return BackgroundStats.from_documents(NEWS_BACKGROUND)


def medical_profile(background, version=1, **overrides):
    arguments = dict(
        policy_id="medical-insurance",
        version=version,
        title="医疗保障基金使用监督管理条例（征求意见稿）",
        clauses=MEDICAL_CLAUSES,
        background=background,
    )
    arguments.update(overrides)
    return build_profile(**arguments)


def housing_profile(background, version=1):
    return build_profile("housing", version, "城市住房租赁和房价管理办法", HOUSING_CLAUSES, background=background)


@pytest.fixture()
def index(background):
    profiles = ProfileIndex()
    profiles.add(medical_profile(background))
    profiles.add(housing_profile(background))
    return profiles


# --- profiles ---


def test_profile_terms_come_from_clauses_with_the_top_term_at_weight_one(background):
    profile = medical_profile(background)
    assert "医保" in profile.terms
    assert max(profile.terms.values()) == pytest.approx(1.0)


def test_title_words_weigh_more_than_words_only_in_the_body(background):
    profile = medical_profile(background)
    assert profile.terms["基金"] > profile.terms["电子"]


def test_editor_keywords_outweigh_every_automatic_term(background):
    profile = medical_profile(background, keywords=["异地就医", "DRG"])
    assert profile.terms["drg"] > max(weight for term, weight in profile.terms.items() if term != "drg")
    assert profile.editor_keywords == ["异地就医", "drg"]


def test_editor_synonyms_let_an_equivalent_wording_match(background):
    plain = medical_profile(background)
    with_synonyms = medical_profile(background, synonyms={"医保": ["看病钱"]})
    article = analyse_article("群众的看病钱", "看病钱怎么花，门诊统筹政策落地。")
    assert score_article(with_synonyms, article).score > score_article(plain, article).score
    assert "看病钱" in score_article(with_synonyms, article).matched_terms
    assert with_synonyms.synonyms["医保"][-1] == "看病钱"


def test_built_in_synonyms_match_everyday_wordings_of_policy_terms(background):
    profile = medical_profile(background)
    article = analyse_article("医疗保险新政出台", "职工医疗保险门诊统筹政策落地。")
    assert "医疗保险" in score_article(profile, article).matched_terms
    assert "医疗保险" in profile.synonyms["医保"]


def test_synonym_table_is_symmetric():
    table = synonym_table(groups=[("个税", "个人所得税")], extra={"ＡＩ": ["人工智能"]})
    assert table == {"个税": ["个人所得税"], "个人所得税": ["个税"], "ai": ["人工智能"], "人工智能": ["ai"]}


def test_policy_names_drop_the_country_prefix_and_the_draft_suffix():
    assert policy_names("中华人民共和国食品安全法（修订草案）", aliases=["食安法"]) == ["食品安全法", "食安法"]


def test_profile_names_are_matched_as_phrases(background):
    profile = medical_profile(background)
    assert profile.phrases["医疗保障基金使用监督管理条例"] > max(profile.terms.values())


def test_clause_terms_are_kept_per_clause_and_sum_to_one(background):
    profile = medical_profile(background)
    assert set(profile.clause_terms) == {"第一条", "第二条", "第三条", "第四条"}
    assert sum(profile.clause_terms["第四条"].values()) == pytest.approx(1.0)


def test_build_profile_rejects_bad_input_with_field_messages(background):
    with pytest.raises(LinkingError) as error:
        build_profile("", -1, "  ", [("1", 42)], background=background)
    assert set(error.value.fields) == {"policy_id", "version", "title", "clauses"}


def test_build_profile_rejects_a_bare_string_where_a_list_of_keywords_belongs(background):
    with pytest.raises(LinkingError) as error:
        medical_profile(background, keywords="医保", threshold=-1)
    assert set(error.value.fields) == {"keywords", "threshold"}


def test_profile_survives_a_json_round_trip(background):
    profile = medical_profile(background, keywords=["异地就医"], synonyms={"医保": ["医疗保险"]})
    restored = InterestProfile.from_dict(json.loads(json.dumps(profile.to_dict(), ensure_ascii=False)))
    assert restored == profile


def test_profile_from_malformed_dict_is_a_clear_error():
    with pytest.raises(LinkingError) as error:
        InterestProfile.from_dict({"policy_id": 3, "terms": []})
    assert set(error.value.fields) == {"policy_id", "version", "terms"}


def test_words_shared_by_most_policies_are_discounted_when_policy_stats_are_given(background):
    stats = PolicyCorpusStats.from_texts(
        ["医疗保障 罚款 责令", "房价 罚款 责令", "教育 罚款 责令", "交通 罚款 责令", "医保 基金"]
    )
    assert stats.factor("罚款") < stats.factor("医保")
    discounted = medical_profile(background, policy_stats=stats)
    plain = medical_profile(background)
    assert discounted.terms["罚款"] / discounted.terms["医保"] < plain.terms["罚款"] / plain.terms["医保"]


# --- matching ---


def test_article_about_yibao_reimbursement_matches_the_medical_policy_first(index):
    suggestions = index.match("异地就医医保报销更方便", "参保人员在异地定点医疗机构就医，医保报销直接结算。")
    assert [suggestion.policy_id for suggestion in suggestions] == ["medical-insurance"]
    assert "医保" in suggestions[0].matched_terms
    assert suggestions[0].score == pytest.approx(sum(suggestions[0].matched_terms.values()))


def test_article_about_house_prices_matches_the_housing_policy(index):
    suggestions = index.match("多地出台措施稳定房价", "保障性住房供给增加，住房租赁市场规范，房价基本稳定。")
    assert suggestions[0].policy_id == "housing"


def test_unrelated_article_gets_no_suggestion(index):
    assert index.match("高温预警", "气象部门发布高温橙色预警，提醒公众防暑。") == []


def test_naming_the_policy_is_strong_evidence(index, background):
    named = analyse_article("条例征求意见", "医疗保障基金使用监督管理条例公开征求意见。")
    unnamed = analyse_article("条例征求意见", "一部行政法规公开征求意见。")
    profile = index.get("medical-insurance")
    assert score_article(profile, named).score > 2 * score_article(profile, unnamed).score


def test_min_score_and_top_k_limit_the_suggestions(index):
    text = "医保报销和房价稳定是民生关切。参保人员就医结算，保障性住房供给增加。"
    assert len(index.match("民生", text, top_k=1, min_score=0.0)) == 1
    assert len(index.match("民生", text, top_k=5, min_score=0.0)) == 2
    assert index.match("民生", text, min_score=1000.0) == []


def test_matched_terms_are_listed_largest_contribution_first(index):
    suggestion = index.match("医保基金监管", "严厉打击骗取医保基金行为，定点医药机构接受检查。")[0]
    contributions = list(suggestion.matched_terms.values())
    assert contributions == sorted(contributions, reverse=True)


def test_best_clause_is_named_when_one_clause_clearly_matches(index):
    suggestion = index.match(
        "打击骗取医保基金", "定点医药机构骗取医保基金，医疗保障行政部门责令退回并处罚款。", min_score=0.0
    )[0]
    assert suggestion.clause_number == "第三条"


def test_no_clause_is_named_when_the_article_only_touches_the_subject(index):
    suggestion = index.match("医疗保障", "医疗保障工作会议召开。", min_score=0.0)[0]
    assert suggestion.clause_number is None


def test_news_on_law_making_scores_higher_than_the_same_story_without_it(background):
    profile = medical_profile(background)
    story = "参保人员医保报销结算更便捷。"
    plain = score_article(profile, analyse_article("医保报销", story)).score
    legislative = score_article(profile, analyse_article("医保报销", story + "有关条例草案提请审议。")).score
    assert legislative > plain


def test_a_headline_citing_another_policy_lowers_the_score(background):
    profile = medical_profile(background)
    body = "参保人员医保报销结算更便捷。相关条例修订。"
    own = score_article(profile, analyse_article("医保报销新变化 公积金新规", body)).score
    other = score_article(profile, analyse_article("医保报销新变化 《公积金新规》", body)).score
    assert other < own


def test_index_scores_agree_with_scoring_one_profile_directly(index):
    article = analyse_article("医保报销", "异地就医医保报销直接结算，房价稳定。草案审议。")
    totals = index.scores(article)
    for policy_id in ("medical-insurance", "housing"):
        expected = score_article(index.get(policy_id), article, index.average_article_length).score
        assert totals[policy_id] == pytest.approx(expected)


def test_newer_version_replaces_the_profile_and_older_one_is_ignored(index, background):
    newer = build_profile(
        "housing", 2, "城市停车管理办法", [("1", "停车泊位 停车收费 智慧停车")], background=background
    )
    assert index.add(newer) is True
    assert index.add(housing_profile(background, version=1)) is False
    assert index.get("housing").version == 2
    assert index.match("智慧停车", "新增停车泊位，停车收费规范。", min_score=0.0)[0].policy_id == "housing"
    assert all(s.policy_id != "housing" for s in index.match("房价", "房价稳定，住房租赁规范。", min_score=0.0))


def test_removed_profile_no_longer_matches(index):
    assert index.remove("medical-insurance") is True
    assert index.remove("medical-insurance") is False
    assert "medical-insurance" not in index
    suggestions = index.match("医保报销", "医保报销结算，医疗保障基金使用监督管理条例。", min_score=0.0)
    assert all(suggestion.policy_id != "medical-insurance" for suggestion in suggestions)


def test_match_rejects_a_non_positive_top_k(index):
    with pytest.raises(LinkingError, match="top_k"):
        index.match("医保", "医保", top_k=0)


def test_rank_articles_for_policy_puts_coverage_of_the_policy_first(background):
    profile = medical_profile(background)
    articles = [
        ("a1", "高温预警", "气象部门发布高温预警。"),
        ("a2", "医保报销更方便", "参保人员异地就医，医保报销直接结算。"),
        ("a3", "房价稳定", "一线城市房价保持稳定。"),
        ("a4", "医保基金监管", "打击骗取医保基金，医疗保障基金使用监督管理条例施行。"),
    ]
    ranked = rank_articles_for_policy(profile, articles, top_k=2)
    assert {suggestion.article_id for suggestion in ranked} == {"a2", "a4"}
    assert ranked[0].score >= ranked[1].score


def test_rank_articles_for_policy_rejects_malformed_articles(background):
    with pytest.raises(LinkingError) as error:
        rank_articles_for_policy(medical_profile(background), [("only-two", "fields")])
    assert "articles" in error.value.fields


def test_background_gives_rarer_words_a_higher_idf(background):
    assert background.idf("医保") > background.idf("工作")


def test_jieba_idf_table_loads_as_a_fallback_background():
    stats = BackgroundStats.from_jieba()
    assert len(stats) > 100_000
    assert stats.idf("医疗保障") > stats.idf("我们")


# --- Elasticsearch bodies ---


def test_percolator_mapping_has_a_percolator_field_the_article_fields_and_an_unparsed_profile():
    properties = percolator_index_mapping()["mappings"]["properties"]
    assert properties["query"] == {"type": "percolator"}
    assert properties["title_terms"]["type"] == "text"
    assert properties["body_terms"]["analyzer"] == "whitespace"
    assert properties["profile"] == {"type": "object", "enabled": False}
    assert percolator_index_mapping(number_of_replicas=0)["settings"]["index"]["number_of_replicas"] == 0


def test_stored_percolator_query_uses_only_mapped_fields_with_profile_weights_as_boosts(background):
    profile = medical_profile(background)
    document = profile_to_percolator_document(profile)
    mapped = set(percolator_index_mapping()["mappings"]["properties"])
    should = document["query"]["bool"]["should"]
    assert document["policy_id"] == "medical-insurance" and document["version"] == 1
    assert set(document) <= mapped
    assert document["query"]["bool"]["minimum_should_match"] == 1
    for clause in should:
        ((kind, body),) = clause.items()
        ((field, _),) = body.items()
        assert kind in {"term", "match_phrase"} and field in mapped
    boosts = {
        c["term"]["body_terms"]["value"]: c["term"]["body_terms"]["boost"]
        for c in should
        if "term" in c and "body_terms" in c["term"]
    }
    assert boosts["医保"] == pytest.approx(profile.terms["医保"], abs=1e-4)
    phrases = [
        c["match_phrase"]["body_terms"]["query"]
        for c in should
        if "match_phrase" in c and "body_terms" in c["match_phrase"]
    ]
    # Phrases are segmented exactly like the percolated article, sub-words included, so positions line up.
    assert " ".join(tokenize("医疗保障基金使用监督管理条例", search_mode=True)) in phrases
    json.dumps(document)


def test_stored_percolator_document_carries_the_profile_for_re_scoring(background):
    profile = medical_profile(background, keywords=["门诊共济"])
    document = profile_to_percolator_document(profile)
    assert InterestProfile.from_dict(json.loads(json.dumps(document["profile"]))) == profile


def test_stored_query_selects_every_profile_the_profile_index_would(background):
    # A profile reached only through a phrase: its key token must be a stored term, as in ProfileIndex.
    profile = build_profile("p", 1, "某某条例", [("1", "第一条 内容。")], keywords=["门诊共济保障"], background=background)
    document = profile_to_percolator_document(profile)
    stored_terms = {c["term"]["body_terms"]["value"] for c in document["query"]["bool"]["should"]
                    if "body_terms" in c.get("term", {})}
    for phrase in profile.phrases:
        assert any(token in stored_terms for token in tokenize(phrase, search_mode=True)), phrase


def test_percolate_query_sends_the_article_segmented_like_the_profiles_and_asks_for_the_profiles():
    body = percolate_query("医保报销新规", "参保人员ＡＢＣ异地就医", size=5)
    percolate = body["query"]["percolate"]
    assert body["size"] == 5
    assert percolate["field"] == "query"
    assert percolate["document"]["title_terms"] == "医保 报销 新规"
    assert "abc" in percolate["document"]["body_terms"].split()
    assert set(percolate["document"]) <= set(percolator_index_mapping()["mappings"]["properties"])
    assert "profile" in body["_source"]


def test_more_like_this_query_runs_on_the_article_fields_of_the_content_index(background):
    from search.backends.elasticsearch import TEXT_ANALYZER, index_mappings

    profile = medical_profile(background)
    body = more_like_this_query(profile, size=7)
    query = body["query"]["bool"]
    mlt = query["should"][0]["more_like_this"]
    content = index_mappings("content")["properties"]
    assert body["size"] == 7
    assert mlt["fields"] == ["title", "body"]
    for name in mlt["fields"]:
        assert content[name] == {"type": "text", "analyzer": TEXT_ANALYZER}
    assert mlt["like"].split()[0] == max(profile.terms, key=profile.terms.get)
    assert set(mlt["like"].split()) == set(profile.terms)
    assert mlt["min_term_freq"] == 1 and mlt["min_doc_freq"] == 1
    assert mlt["max_query_terms"] >= len(profile.terms)
    phrases = [c["match_phrase"] for c in query["should"][1:]]
    assert {"body": {"query": "医疗保障基金使用监督管理条例", "boost": 3.0}} in phrases
    assert query["minimum_should_match"] == 1
    assert query["filter"] == [{"term": {"doc_type": "article"}}]
    assert set(body["_source"]) <= set(content) and {"title", "body", "doc_id"} <= set(body["_source"])


def test_elasticsearch_bodies_reject_a_non_positive_size(background):
    with pytest.raises(LinkingError):
        percolate_query("a", "b", size=0)
    with pytest.raises(LinkingError):
        more_like_this_query(medical_profile(background), size=0)


def test_feedback_from_matching_coverage_teaches_the_profile_the_news_wording(background):
    profile = medical_profile(background)
    coverage = [
        analyse_article("门诊共济改革落地", "门诊共济改革后，医保个人账户可以给家人用，门诊共济惠及职工。"),
        analyse_article("门诊共济 看病更省钱", "职工医保门诊共济保障机制全面实施，参保人员门诊报销。"),
    ]
    later_story = analyse_article("门诊共济一周年", "门诊共济实施一周年。")
    expanded = expand_with_feedback(profile, coverage, background, n_terms=5, weight=0.3)
    assert "共济" in expanded.terms and "共济" not in profile.terms
    assert max(weight for term, weight in expanded.terms.items() if term not in profile.terms) <= 0.3
    assert score_article(expanded, later_story).score > score_article(profile, later_story).score
    assert expanded.policy_id == profile.policy_id and expanded.phrases == profile.phrases


def test_feedback_without_articles_leaves_the_profile_unchanged(background):
    profile = medical_profile(background)
    assert expand_with_feedback(profile, [], background) is profile


# --- time: reports of the policy-making procedure near the policy's own dates ---

# An executive meeting of the government: the procedure that makes a regulation (条例) such as the medical one.
SESSION_REPORT = (
    "国务院常务会议研究部署多项工作",
    "会议讨论了医疗保障基金使用监督有关草案和其他几部行政法规草案，研究了参保人员待遇等事项。",
)
LEGISLATURE_REPORT = (
    "十四届全国人大常委会第十次会议在京举行",
    "会议审议了医疗保障有关法律草案、关于修改其他法律的议案，表决通过了有关决定。参保人员代表列席会议。",
)


def test_profile_dates_accept_dates_datetimes_and_iso_strings_and_survive_a_round_trip(background):
    import datetime as dt

    profile = medical_profile(
        background, dates=[dt.date(2025, 4, 30), dt.datetime(2025, 5, 2, 9, tzinfo=dt.UTC), "2025-06-01T08:00:00+08:00", None]
    )
    assert profile.dates == ["2025-04-30", "2025-05-02", "2025-06-01"]
    assert InterestProfile.from_dict(json.loads(json.dumps(profile.to_dict()))).dates == profile.dates


def test_bad_dates_are_field_errors(background):
    with pytest.raises(LinkingError) as error:
        medical_profile(background, dates=["yesterday"])
    assert "dates" in error.value.fields
    with pytest.raises(LinkingError) as error:
        analyse_article("标题", "正文", published="not a date")
    assert "published" in error.value.fields
    with pytest.raises(LinkingError):
        InterestProfile.from_dict({**medical_profile(background).to_dict(), "dates": ["2025-13-45"]})


def test_a_procedure_report_near_the_policy_date_ranks_above_the_same_report_months_away(background):
    profile = medical_profile(background, dates=["2025-04-30"])
    near = score_article(profile, analyse_article(*SESSION_REPORT, published="2025-04-28"))
    far = score_article(profile, analyse_article(*SESSION_REPORT, published="2024-01-10"))
    undated = score_article(profile, analyse_article(*SESSION_REPORT))
    assert near.score > far.score >= undated.score
    # the words are the same: so is the evidence, and what an editor is shown as matched
    assert near.evidence == pytest.approx(far.evidence) == pytest.approx(undated.score)
    assert near.matched_terms == far.matched_terms


def test_time_does_not_change_the_score_of_an_article_that_reports_no_procedure(background):
    profile = medical_profile(background, dates=["2025-04-30"])
    story = ("医保报销", "参保人员医保报销结算更便捷，异地就医直接结算。")
    assert score_article(profile, analyse_article(*story, published="2025-04-30")).score == pytest.approx(
        score_article(profile, analyse_article(*story)).score
    )


def test_time_orders_suggestions_but_never_lifts_one_over_the_threshold(background):
    report = analyse_article(*SESSION_REPORT, published="2025-04-30")
    evidence = score_article(medical_profile(background, dates=["2025-04-30"]), report).evidence
    assert 0 < evidence
    profile = medical_profile(background, dates=["2025-04-30"], threshold=evidence * 1.5)
    assert score_article(profile, report).score > profile.threshold  # the time-weighted score would pass ...
    index = ProfileIndex()
    index.add(profile)
    assert index.match_analysed(report) == []  # ... but the words alone do not
    assert rank_articles_for_policy(profile, [report], min_score=profile.threshold) == []
    lower = medical_profile(background, dates=["2025-04-30"], threshold=evidence * 0.5)
    index.add(lower)
    (suggestion,) = index.match_analysed(report)
    assert suggestion.score == pytest.approx(index.scores(report)[lower.policy_id])


def test_index_scores_agree_with_scoring_one_profile_directly_for_a_dated_procedure_report(background):
    index = ProfileIndex()
    index.add(medical_profile(background, dates=["2025-04-30"]))
    index.add(housing_profile(background))
    report = analyse_article(*SESSION_REPORT, published="2025-05-03")
    totals = index.scores(report)
    for policy_id in ("medical-insurance", "housing"):
        expected = score_article(index.get(policy_id), report, index.average_article_length).score
        assert totals.get(policy_id, 0.0) == pytest.approx(expected)


def test_rank_articles_for_policy_takes_a_publication_date_with_each_article(background):
    profile = medical_profile(background, dates=["2025-04-30"])
    near = ("a-near", *SESSION_REPORT, "2025-04-29")
    far = ("a-far", *SESSION_REPORT, "2023-04-29")
    ranked = rank_articles_for_policy(profile, [far, near], top_k=None)
    assert [suggestion.article_id for suggestion in ranked] == ["a-near", "a-far"]


def test_the_procedure_that_matters_is_the_one_that_makes_the_policy(background):
    regulation = medical_profile(background, dates=["2025-04-30"])
    law = build_profile(
        "medical-law", 1, "中华人民共和国医疗保障法（草案）", MEDICAL_CLAUSES, background=background, dates=["2025-04-30"]
    )
    assert (regulation.procedure, law.procedure) == ("government", "legislature")
    legislature = analyse_article(*LEGISLATURE_REPORT, published="2025-04-30")
    government = analyse_article(*SESSION_REPORT, published="2025-04-30")
    assert legislature.procedures == {"legislature"} and government.procedures == {"government"}
    assert score_article(law, legislature).score > score_article(law, legislature).evidence
    assert score_article(regulation, legislature).score == pytest.approx(score_article(regulation, legislature).evidence)
    assert score_article(regulation, government).score > score_article(regulation, government).evidence


def test_a_stored_profile_without_a_procedure_gets_it_from_its_title(background):
    stored = medical_profile(background).to_dict()
    del stored["procedure"]
    assert InterestProfile.from_dict(stored).procedure == "government"


@pytest.mark.parametrize(
    "title, kind",
    [
        ("中华人民共和国传染病防治法", "legislature"),
        ("中华人民共和国民法典", "legislature"),
        ("中华人民共和国商标法（修订草案）", "legislature"),
        ("门诊医疗费用医保报销管理办法（征求意见稿）", "government"),
        ("医疗保障基金使用监督管理条例", "government"),
        ("关于促进民营经济发展的若干意见", "government"),
    ],
)
def test_laws_are_made_by_the_legislature_and_other_policies_by_the_government(background, title, kind):
    assert build_profile("p", 1, title, MEDICAL_CLAUSES, background=background).procedure == kind


def test_a_government_meeting_that_submits_a_draft_to_the_legislature_is_not_a_legislative_session():
    article = analyse_article("国务院常务会议召开", "会议讨论并原则通过有关法律草案，决定将草案提请全国人大常委会审议。")
    assert article.procedures == {"government"}

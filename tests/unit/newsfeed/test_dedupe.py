from newsfeed import dedupe

STORY = (
    "市医疗保障局今天发布《关于完善职工基本医疗保险门诊共济保障机制的实施办法（征求意见稿）》，"
    "向社会公开征求意见。征求意见稿提出，普通门诊统筹报销比例在一级及以下定点医疗机构提高到百分之六十，"
    "年度最高支付限额由二千元提高到三千元，退休人员报销比例再提高五个百分点。意见反馈截止日期为二月十日，"
    "市民可通过市政府门户网站的意见征集栏目提交意见和建议。"
)
# What a second outlet runs: another date line and a reworded closing sentence.
COPY = STORY.replace("今天", "1月6日").replace("市民可通过", "公众可以通过")
OTHER = (
    "住房和城乡建设局就《保障性租赁住房管理办法（草案）》公开征求意见，草案明确租金标准不高于同地段市场租金的九成，"
    "新市民和青年人可申请，单套建筑面积原则上不超过七十平方米，并对房价过快上涨地区优先增加供给。"
    "草案还规定了准入退出机制和租赁合同备案要求，违规转租的将被取消资格并记入信用档案。"
)
ENGLISH = (
    "The city transport bureau opened consultation on a draft plan for protected cycling lanes along five arterial "
    "roads. Kerb-separated lanes would replace painted ones, junctions would get early-release signals for bicycles, "
    "and parking on the affected blocks would move to side streets. Comments are open until the end of February."
)


def test_syndicated_copy_with_small_edits_is_a_near_duplicate():
    assert dedupe.is_near_duplicate(dedupe.sketch(STORY), dedupe.sketch(COPY))


def test_english_copy_with_an_extra_sentence_is_a_near_duplicate():
    extended = ENGLISH + " A public hearing follows."

    assert dedupe.is_near_duplicate(dedupe.sketch(ENGLISH), dedupe.sketch(extended))


def test_different_stories_are_not_near_duplicates():
    assert not dedupe.is_near_duplicate(dedupe.sketch(STORY), dedupe.sketch(OTHER))
    assert not dedupe.is_near_duplicate(dedupe.sketch(STORY), dedupe.sketch(ENGLISH))


def test_sketch_is_deterministic_and_needs_enough_text():
    assert dedupe.sketch(STORY) == dedupe.sketch("".join(list(STORY)))
    assert dedupe.sketch("short teaser") is None


def test_sketch_survives_its_text_encoding_for_storage():
    value = dedupe.sketch(STORY)

    assert dedupe.decode_sketch(dedupe.encode_sketch(value)) == value
    assert dedupe.decode_sketch("garbage") is None


def test_band_keys_fit_a_signed_bigint_column():
    keys = dedupe.band_keys(dedupe.sketch(STORY))

    assert len(keys) == dedupe.LSH_BANDS
    assert all(-(1 << 63) <= key < (1 << 63) for key in keys)


def test_index_returns_the_canonical_story_for_a_copy_and_nothing_for_a_new_story():
    index = dedupe.NearDuplicateIndex([dedupe.Fingerprinted("story", dedupe.sketch(STORY)),
                                       dedupe.Fingerprinted("other", dedupe.sketch(OTHER))])

    assert index.nearest(dedupe.sketch(COPY)).id == "story"
    assert index.nearest(dedupe.sketch(ENGLISH)) is None

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consultation.redaction import (
    MARKERS,
    PersonalDataKind,
    contains_personal_data,
    redact_personal_data,
)

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
FULL_WIDTH = str.maketrans("0123456789-()+@.", "０１２３４５６７８９－（）＋＠．")


def make_id_number(region="110101", birth="19900307", sequence="451", check_digit=None):
    """A mainland ID number with a correct ISO 7064 MOD 11-2 check digit unless one is forced."""
    body = f"{region}{birth}{sequence}"
    computed = "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]
    return body + (check_digit or computed)


def wrong_check_digit(number):
    right = number[-1]
    return next(c for c in "0123456789" if c != right)


def make_bank_card(prefix="622202", length=19, fill="1234567890123"):
    """A card number of ``length`` digits completed with a valid Luhn check digit."""
    body = (prefix + fill)[: length - 1]
    for check in "0123456789":
        candidate = body + check
        total = 0
        for index, char in enumerate(reversed(candidate)):
            value = int(char) * (2 if index % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def redacted_kinds(text):
    return [(finding.kind, text[finding.start : finding.end]) for finding in redact_personal_data(text).findings]


def test_valid_eighteen_digit_id_number_is_redacted():
    number = make_id_number()

    result = redact_personal_data(f"我的身份证号{number}请保密")

    assert result.text == "我的身份证号[身份证号已隐去]请保密"
    assert [(finding.kind, finding.span) for finding in result.findings] == [(PersonalDataKind.ID_NUMBER, (6, 24))]


def test_id_number_with_x_check_digit_is_redacted_in_either_case():
    number = next(
        make_id_number(sequence=f"{seq:03d}") for seq in range(1000) if make_id_number(sequence=f"{seq:03d}")[-1] == "X"
    )

    assert redacted_kinds(f"证件{number}。") == [(PersonalDataKind.ID_NUMBER, number)]
    assert redacted_kinds(f"证件{number.lower()}。") == [(PersonalDataKind.ID_NUMBER, number.lower())]


def test_eighteen_digit_number_with_wrong_checksum_is_kept():
    number = make_id_number()
    wrong = number[:-1] + wrong_check_digit(number)

    assert redact_personal_data(f"编号{wrong}").text == f"编号{wrong}"


def test_eighteen_digit_number_with_impossible_birth_date_is_kept():
    number = make_id_number(birth="19901332")

    assert not contains_personal_data(f"编号{number}")


def test_old_fifteen_digit_id_number_is_redacted():
    assert redacted_kinds("旧证110101900307451号") == [(PersonalDataKind.ID_NUMBER, "110101900307451")]


def test_fifteen_digit_number_without_a_plausible_date_is_kept():
    assert not contains_personal_data("流水号110101901399451")


@pytest.mark.parametrize(
    "mobile",
    ["13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+8613812345678", "0086-13812345678",
     "(+86)13812345678", "19912345678"],
)  # fmt: skip
def test_mobile_numbers_in_common_forms_are_redacted(mobile):
    result = redact_personal_data(f"手机：{mobile}。")

    assert result.text == "手机：[手机号已隐去]。"
    assert [finding.kind for finding in result.findings] == [PersonalDataKind.MOBILE]


def test_mobile_number_between_chinese_characters_without_spaces_is_redacted():
    assert redact_personal_data("我的电话13812345678请联系").text == "我的电话[手机号已隐去]请联系"


def test_number_that_only_looks_like_a_mobile_prefix_is_kept():
    assert not contains_personal_data("编号12812345678与138123456789")


@pytest.mark.parametrize(
    "landline",
    ["010-12345678", "0755 8888 8888", "(021)12345678", "0571-88888888", "021 1234 5678", "+86 10 12345678",
     "0755-8888888转123", "400-123-4567", "800 123 4567", "4001234567"],
)  # fmt: skip
def test_landline_and_service_numbers_are_redacted(landline):
    result = redact_personal_data(f"电话{landline}，欢迎来电")

    assert result.text == "电话[电话已隐去]，欢迎来电"
    assert [finding.kind for finding in result.findings] == [PersonalDataKind.LANDLINE]


@pytest.mark.parametrize(
    "email", ["zhang.san@example.com", "li_si+consult@mail.gov.cn", "13812345678@qq.com", "_wang@sub.example.org"]
)
def test_email_addresses_are_redacted_whole(email):
    result = redact_personal_data(f"邮箱{email}联系")

    assert result.text == "邮箱[邮箱已隐去]联系"
    assert [finding.kind for finding in result.findings] == [PersonalDataKind.EMAIL]


@pytest.mark.parametrize(
    "card",
    [make_bank_card(), make_bank_card("4111", 16), make_bank_card("5500", 16), make_bank_card("622848", 19)],
)
def test_bank_card_numbers_passing_luhn_are_redacted(card):
    assert redacted_kinds(f"卡号{card}。") == [(PersonalDataKind.BANK_CARD, card)]


def test_bank_card_number_grouped_in_fours_is_redacted():
    card = make_bank_card("622202", 19)
    grouped = " ".join(card[i : i + 4] for i in range(0, 19, 4))

    assert redact_personal_data(f"请打款到 {grouped} 谢谢").text == "请打款到 [银行卡号已隐去] 谢谢"


def test_card_like_number_failing_luhn_is_kept():
    card = make_bank_card()
    broken = card[:-1] + str((int(card[-1]) + 1) % 10)

    assert not contains_personal_data(f"卡号{broken}")


@pytest.mark.parametrize(
    "text",
    [
        "本办法自2026年12月31日起施行。",
        "补贴总额为1000000元，约合13000000000元人民币的一成。",
        "价格￥13812345678，增长12.5%。",
        "依照第一百零一条和第12条规定，2019年至2026年期间执行。",
        "时间：2026-01-12 10:30，文号国发〔2019〕5号，索引号000014349/2019-00007。",
        "详见 https://www.gov.cn/zhengce/content/2019-02/15/content_13812345678.htm 页面",
        "统一社会信用代码91110000100000000A",
    ],
)
def test_dates_amounts_article_numbers_and_urls_are_not_redacted(text):
    assert redact_personal_data(text).text == text
    assert not contains_personal_data(text)


def test_email_inside_a_url_is_still_redacted():
    assert redact_personal_data("mailto:wang@gov.cn").text == "mailto:[邮箱已隐去]"


def test_full_width_digits_are_detected_and_the_original_span_is_replaced():
    text = "电话：１３８１２３４５６７８，座机（０２１）１２３４５６７８。"

    result = redact_personal_data(text)

    assert result.text == "电话：[手机号已隐去]，座机[电话已隐去]。"
    assert [text[finding.start : finding.end] for finding in result.findings] == [
        "１３８１２３４５６７８",
        "（０２１）１２３４５６７８",
    ]


def test_full_width_id_number_is_detected():
    number = make_id_number()

    assert redacted_kinds(f"身份证{number.translate(FULL_WIDTH)}") == [
        (PersonalDataKind.ID_NUMBER, number.translate(FULL_WIDTH))
    ]


def test_english_markers_are_used_on_request():
    result = redact_personal_data("Call 13812345678 or mail a@b.org", marker_language="en")

    assert result.text == "Call [mobile number removed] or mail [e-mail removed]"


def test_unknown_marker_language_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="marker_language"):
        redact_personal_data("13812345678", marker_language="fr")


def test_findings_carry_no_value_so_they_can_be_logged():
    result = redact_personal_data("手机13812345678")

    assert "13812345678" not in repr(result.findings)


def test_every_kind_has_a_marker_in_every_language():
    for markers in MARKERS.values():
        assert set(markers) == set(PersonalDataKind)


def test_text_without_personal_data_is_returned_unchanged():
    text = "我支持第三条，但建议把补贴提高到每月1000元。"

    result = redact_personal_data(text)

    assert result.text == text
    assert result.findings == ()


# --- property: whatever is detected is gone -----------------------------------------------------------------------

FILLER = st.text(alphabet="我的电话是邮箱号码请联系谢谢支持反对意见，。：（ ）", min_size=1, max_size=8)
DATES = st.dates(min_value=__import__("datetime").date(1930, 1, 1), max_value=__import__("datetime").date(2010, 12, 31))


@st.composite
def mobile_values(draw):
    digits = f"1{draw(st.sampled_from('3456789'))}{draw(st.integers(0, 999_999_999)):09d}"
    layout = draw(st.sampled_from(["{}", "{0:.3} {1} {2}", "{0:.3}-{1}-{2}", "+86 {}", "0086{}"]))
    if layout.startswith("{0"):
        return layout.format(digits, digits[3:7], digits[7:])
    return layout.format(digits)


@st.composite
def id_values(draw):
    born = draw(DATES)
    return make_id_number(
        region=draw(st.sampled_from(["110101", "310104", "440305", "510107"])),
        birth=born.strftime("%Y%m%d"),
        sequence=f"{draw(st.integers(0, 999)):03d}",
    )


@st.composite
def card_values(draw):
    fill = f"{draw(st.integers(0, 10**13 - 1)):013d}"
    return make_bank_card(
        draw(st.sampled_from(["622202", "622848", "411111", "552233"])), draw(st.sampled_from([16, 19])), fill
    )


EMAILS = st.from_regex(r"[a-z][a-z0-9._]{0,10}[a-z0-9]@[a-z]{2,8}\.(com|cn|org)", fullmatch=True)
LANDLINES = st.sampled_from(["010-", "021-", "0755 ", "(0571)"]).flatmap(
    lambda area: st.integers(20_000_000, 89_999_999).map(lambda local: f"{area}{local}")
)
VALUES = st.one_of(mobile_values(), id_values(), card_values(), EMAILS, LANDLINES)


@st.composite
def comments_with_personal_data(draw):
    values = draw(st.lists(VALUES, min_size=1, max_size=5))
    full_width = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    values = [value.translate(FULL_WIDTH) if wide else value for value, wide in zip(values, full_width, strict=True)]
    parts = [draw(FILLER)]
    for value in values:
        parts += [value, draw(FILLER)]
    return "".join(parts), values


@given(comments_with_personal_data())
@settings(max_examples=200, deadline=None)  # speed is for bench/, not for tests
def test_redacted_text_never_contains_a_detected_value(comment_and_values):
    text, planted = comment_and_values

    result = redact_personal_data(text)

    detected = [text[finding.start : finding.end] for finding in result.findings]
    for value in detected + planted:
        assert value not in result.text
    assert not contains_personal_data(result.text)
    assert len(result.findings) == len(planted)

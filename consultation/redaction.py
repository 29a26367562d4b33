"""Redacting personal data (ID numbers, phone numbers, e-mail addresses, bank cards) from citizen comments.

Citizens often leave their contact details in the comment body. Nothing public may show them, so comments pass through
``redact_personal_data`` before publication. Findings carry only the kind and the span in the original text, never the
value, so they can be logged and counted.

Detection runs on a normalised copy of the text in which full-width ASCII (０-９, ＠, ＋, （） …) is folded to ASCII one
character for one character, so every span found in the copy is also the span in the original.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "MARKERS",
    "Finding",
    "PersonalDataKind",
    "RedactionResult",
    "contains_personal_data",
    "find_personal_data",
    "redact_personal_data",
]


class PersonalDataKind(StrEnum):
    ID_NUMBER = "id_number"
    MOBILE = "mobile"
    LANDLINE = "landline"
    EMAIL = "email"
    BANK_CARD = "bank_card"


MARKERS: dict[str, dict[PersonalDataKind, str]] = {
    "zh": {
        PersonalDataKind.ID_NUMBER: "[身份证号已隐去]",
        PersonalDataKind.MOBILE: "[手机号已隐去]",
        PersonalDataKind.LANDLINE: "[电话已隐去]",
        PersonalDataKind.EMAIL: "[邮箱已隐去]",
        PersonalDataKind.BANK_CARD: "[银行卡号已隐去]",
    },
    "en": {
        PersonalDataKind.ID_NUMBER: "[ID number removed]",
        PersonalDataKind.MOBILE: "[mobile number removed]",
        PersonalDataKind.LANDLINE: "[phone number removed]",
        PersonalDataKind.EMAIL: "[e-mail removed]",
        PersonalDataKind.BANK_CARD: "[bank card number removed]",
    },
}


@dataclass(frozen=True)
class Finding:
    kind: PersonalDataKind
    span: tuple[int, int]  # [start, end) in the original text

    @property
    def start(self) -> int:
        return self.span[0]

    @property
    def end(self) -> int:
        return self.span[1]


@dataclass(frozen=True)
class RedactionResult:
    text: str
    findings: tuple[Finding, ...]


# U+FF01..U+FF5E are full-width twins of ASCII 0x21..0x7E; U+3000 is the ideographic space.
_FOLD_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

# Digits must not continue a longer run of digits, and a number written as money is an amount, not a contact.
_NO_DIGIT_BEFORE = r"(?<![0-9])"
_NO_DIGIT_AFTER = r"(?![0-9])"
_NOT_MONEY_BEFORE = r"(?<![¥$€£￥])"
_NOT_MONEY_AFTER = r"(?!\s*(?:元|圆|块|角|万|亿|美元|欧元|港元|英镑|日元|人民币|%|‰|RMB|USD|CNY|yuan))"
_SEP = r"[ \-\u00a0]?"  # one optional space or dash between digit groups, as people write phone numbers

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
_ID_18 = re.compile(_NO_DIGIT_BEFORE + r"[1-9][0-9]{16}[0-9Xx]" + r"(?![0-9A-Za-z])")
_ID_15 = re.compile(_NO_DIGIT_BEFORE + _NOT_MONEY_BEFORE + r"[1-9][0-9]{14}" + _NO_DIGIT_AFTER + _NOT_MONEY_AFTER)
_MOBILE = re.compile(
    _NO_DIGIT_BEFORE
    + _NOT_MONEY_BEFORE
    + r"(?:(?:\+|00)\s?86[ \-]?|\(\+?86\)\s?)?"
    + r"1[3-9][0-9]"
    + _SEP
    + r"[0-9]{4}"
    + _SEP
    + r"[0-9]{4}"
    + _NO_DIGIT_AFTER
    + _NOT_MONEY_AFTER
)
# Area codes: 010 and 02X are three digits, all others 0 + three digits; local numbers never start with 0.
_AREA_CODE = r"(?:010|02[0-9]|0[3-9][0-9]{2})"
_LOCAL_NUMBER = r"[1-9][0-9]{2,3}" + _SEP + r"[0-9]{4}"
_AREA_CODE_WITHOUT_TRUNK = r"(?:10|2[0-9]|[3-9][0-9]{2})"
_LANDLINE = re.compile(
    _NO_DIGIT_BEFORE
    + r"(?:"
    + r"(?:\+|00)\s?86[ \-]?" + _AREA_CODE_WITHOUT_TRUNK + r"[ \-]?"  # the country code replaces the trunk 0
    + r"|\(" + _AREA_CODE + r"\)\s?"
    + r"|" + _AREA_CODE + r"[ \-]?"
    + r")"
    + _LOCAL_NUMBER
    + r"(?:\s?(?:转|ext\.?|x)\s?[0-9]{1,5})?"
    + _NO_DIGIT_AFTER
    + _NOT_MONEY_AFTER
)  # fmt: skip
_SERVICE_NUMBER = re.compile(
    _NO_DIGIT_BEFORE + _NOT_MONEY_BEFORE + r"[48]00" + _SEP + r"[0-9]{3}" + _SEP + r"[0-9]{4}"
    + _NO_DIGIT_AFTER + _NOT_MONEY_AFTER
)  # fmt: skip
_BANK_CARD = re.compile(
    _NO_DIGIT_BEFORE
    + _NOT_MONEY_BEFORE
    + r"(?:[0-9]{4}(?:[ \-][0-9]{4}){3}(?:[ \-]?[0-9]{1,3})?|[0-9]{16,19})"
    + _NO_DIGIT_AFTER
    + _NOT_MONEY_AFTER
)
_URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.I)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"


def _id_checksum_ok(number: str) -> bool:
    """ISO 7064 MOD 11-2 as used by GB 11643: the weighted sum of the first 17 digits picks the 18th character."""
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11] == number[17].upper()


def _plausible_birth_date(year: int, month: int, day: int) -> bool:
    try:
        born = dt.date(year, month, day)
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= dt.date.today()


def _is_id_18(number: str) -> bool:
    return _plausible_birth_date(int(number[6:10]), int(number[10:12]), int(number[12:14])) and _id_checksum_ok(number)


def _is_id_15(number: str) -> bool:
    # First-generation IDs (issued until 2004) carry a two-digit year of the 1900s and no check digit.
    return _plausible_birth_date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_bank_card(candidate: str) -> bool:
    digits = re.sub(r"[ \-]", "", candidate)
    if not 16 <= len(digits) <= 19 or not _luhn_ok(digits):
        return False
    # An 18-digit run shaped like an ID (birth date in place) whose check digit is wrong is a mistyped ID number or
    # a reference number, not a card; cards of 18 digits are rare enough that leaving them is the better error.
    if len(digits) == 18 and _plausible_birth_date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14])):
        return False
    # Card numbers start with 3-6 (JCB/Amex, Visa, Mastercard, UnionPay 62); long serials starting otherwise are not.
    return digits[0] in "3456"


def _always(_: str) -> bool:
    return True


# Earlier rules win when matches overlap: an e-mail address may contain a phone number, an ID may pass Luhn.
_RULES: tuple[tuple[PersonalDataKind, re.Pattern[str], Callable[[str], bool], bool], ...] = (
    # (kind, pattern, validator, applies inside URLs)
    (PersonalDataKind.EMAIL, _EMAIL, _always, True),
    (PersonalDataKind.ID_NUMBER, _ID_18, _is_id_18, False),
    (PersonalDataKind.BANK_CARD, _BANK_CARD, _is_bank_card, False),
    (PersonalDataKind.ID_NUMBER, _ID_15, _is_id_15, False),
    (PersonalDataKind.MOBILE, _MOBILE, _always, False),
    (PersonalDataKind.LANDLINE, _LANDLINE, _always, False),
    (PersonalDataKind.LANDLINE, _SERVICE_NUMBER, _always, False),
)


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def find_personal_data(text: str) -> tuple[Finding, ...]:
    """All personal data in ``text`` as non-overlapping findings, ordered by position."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    folded = text.translate(_FOLD_FULL_WIDTH)
    # Long digit runs in links are article or page ids; only e-mail addresses inside a URL are personal data.
    url_spans = [match.span() for match in _URL.finditer(folded)]
    taken: list[tuple[int, int]] = []
    findings: list[Finding] = []
    for kind, pattern, is_valid, inside_urls in _RULES:
        for match in pattern.finditer(folded):
            span = match.span()
            if not inside_urls and _overlaps(span, url_spans):
                continue
            if _overlaps(span, taken) or not is_valid(match.group()):
                continue
            taken.append(span)
            findings.append(Finding(kind, span))
    return tuple(sorted(findings, key=lambda finding: finding.span))


def redact_personal_data(text: str, marker_language: str = "zh") -> RedactionResult:
    """Replace every piece of personal data in ``text`` with a visible marker in ``marker_language`` ("zh" or "en")."""
    if marker_language not in MARKERS:
        raise ValueError(f"unsupported marker_language {marker_language!r}; expected one of {', '.join(MARKERS)}")
    findings = find_personal_data(text)
    markers = MARKERS[marker_language]
    parts: list[str] = []
    position = 0
    for finding in findings:
        parts.append(text[position : finding.start])
        parts.append(markers[finding.kind])
        position = finding.end
    parts.append(text[position:])
    return RedactionResult("".join(parts), findings)


def contains_personal_data(text: str) -> bool:
    """True when ``text`` holds anything ``redact_personal_data`` would hide (for moderation flags and checks)."""
    return bool(find_personal_data(text))

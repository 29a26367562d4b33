"""Field-message catalogue (zh / en) for validation errors.

Schemas and handlers put message ids into ValidationFailed.errors (e.g. {"text": "text.length"}); the gateway turns
them into text in the reader's language with `translate_errors`. Marshmallow's own English defaults (for fields that
do not override them) are mapped to ids too, so no untranslated English leaks into a Chinese page.
"""
from __future__ import annotations

from typing import Any

DEFAULT_LANGUAGE = "zh"

CATALOGUE: dict[str, dict[str, str]] = {
    "field.required": {"zh": "此项为必填项。", "en": "This field is required."},
    "field.null": {"zh": "此项不能为空。", "en": "This field may not be empty."},
    "field.invalid": {"zh": "格式不正确。", "en": "Invalid value."},
    "field.unknown": {"zh": "不支持的字段。", "en": "Unknown field."},
    "field.length": {"zh": "长度不符合要求。", "en": "Length is out of range."},
    "field.choice": {"zh": "不是允许的选项。", "en": "Not one of the allowed choices."},
    "field.string": {"zh": "应为文本。", "en": "Must be text."},
    "field.integer": {"zh": "应为整数。", "en": "Must be a whole number."},
    "field.number": {"zh": "应为数字。", "en": "Must be a number."},
    "field.boolean": {"zh": "应为是或否。", "en": "Must be true or false."},
    "field.list": {"zh": "应为列表。", "en": "Must be a list."},
    "field.dict": {"zh": "应为键值对象。", "en": "Must be an object."},
    "field.datetime": {"zh": "日期时间格式不正确。", "en": "Not a valid date and time."},
    "field.range": {"zh": "数值超出允许范围。", "en": "Value is out of range."},
    "field.url": {"zh": "请输入以 http:// 或 https:// 开头的网址。", "en": "Enter a URL starting with http:// or https://."},
    "field.language": {"zh": "语言只能是 zh 或 en。", "en": "Language must be zh or en."},
    "field.cursor": {"zh": "分页标记无效，请从第一页重新开始。", "en": "Invalid page cursor; start again from the first page."},
    "datetime.naive": {"zh": "时间必须包含时区。", "en": "The time must include a time zone."},
    "text.length": {"zh": "意见内容须为 1 至 5000 字。", "en": "The text must be 1 to 5,000 characters."},
    "title.length": {"zh": "标题须为 1 至 300 字。", "en": "The title must be 1 to 300 characters."},
    "window.close_in_past": {"zh": "截止时间必须晚于当前时间。", "en": "The closing time must be in the future."},
    "window.close_before_open": {"zh": "截止时间必须晚于开始时间。", "en": "The closing time must be after the opening time."},
    "draft.text_or_clauses": {"zh": "请粘贴草案全文或逐条填写条款（二选一）。",
                              "en": "Paste the draft text or give the clauses, not both."},
    "draft.no_clauses": {"zh": "未识别到任何条款（如“第一条”）。", "en": "No clauses (such as “Article 1”) were found."},
    "draft.duplicate_clause_number": {"zh": "条款编号重复。", "en": "Clause numbers repeat."},
    "clause.number_invalid": {"zh": "条款编号须为正整数。", "en": "Clause numbers must be positive whole numbers."},
    "clause.unknown": {"zh": "当前版本中没有该条款。", "en": "The current version has no such clause."},
    "policy.topics_invalid": {"zh": "主题最多 20 个，每个不超过 100 字。",
                              "en": "At most 20 topics of up to 100 characters each."},
    "policy.time_zone_invalid": {"zh": "未知的时区（例如 Asia/Shanghai）。",
                                 "en": "Unknown time zone (for example Asia/Shanghai)."},
    "comment.contact_invalid": {"zh": "请填写有效的手机号码或电子邮箱。",
                                "en": "Enter a valid phone number or e-mail address."},
    "comment.contact_consent_required": {"zh": "留下联系方式前请同意我们与您联系。",
                                         "en": "Please agree to be contacted before leaving contact details."},
    "moderation.reason_required": {"zh": "拒绝时请选择原因。", "en": "Choose a reason when rejecting."},
    "password.too_short": {"zh": "密码至少需要 10 个字符。", "en": "The password needs at least 10 characters."},
    "password.too_long": {"zh": "密码过长。", "en": "The password is too long."},
    "username.invalid": {"zh": "用户名须为 3 至 80 个字母、数字或 . _ -。",
                         "en": "Usernames are 3 to 80 letters, digits or . _ -."},
    "roles.required": {"zh": "请至少选择一个角色。", "en": "Choose at least one role."},
    "roles.unknown": {"zh": "未知的角色。", "en": "Unknown role."},
    "site_key.origin_invalid": {"zh": "来源须为 https://域名 形式，不含路径。",
                                "en": "Origins look like https://example.com, without a path."},
    "site_key.theme_invalid": {"zh": "主题只能包含 CSS 变量（--名称: 值）。",
                               "en": "The theme may only hold CSS variables (--name: value)."},
    "site_key.key_invalid": {"zh": "密钥须为 4 至 64 个字母、数字、_ 或 -。",
                             "en": "Keys are 4 to 64 letters, digits, _ or -."},
    "report.entries_required": {"zh": "请至少填写一条反馈。", "en": "Add at least one entry."},
    "report.duplicate_clause": {"zh": "同一条款只能有一条反馈。", "en": "One entry per clause."},
}

# Marshmallow's built-in English messages, for fields that keep the defaults.
MARSHMALLOW_DEFAULTS: dict[str, str] = {
    "Missing data for required field.": "field.required",
    "Field may not be null.": "field.null",
    "Unknown field.": "field.unknown",
    "Not a valid string.": "field.string",
    "Not a valid integer.": "field.integer",
    "Not a valid number.": "field.number",
    "Not a valid boolean.": "field.boolean",
    "Not a valid list.": "field.list",
    "Not a valid mapping type.": "field.dict",
    "Not a valid datetime.": "field.datetime",
    "Not a valid URL.": "field.url",
    "Invalid input type.": "field.invalid",
    "Invalid value.": "field.invalid",
    "Not a valid aware datetime.": "datetime.naive",
    "Not a valid email address.": "comment.contact_invalid",
}


def normalise_language(language: str | None) -> str:
    """'zh-CN', 'zh_Hans', 'en-GB' … to 'zh' or 'en'; anything else falls back to Chinese."""
    if not language:
        return DEFAULT_LANGUAGE
    primary = language.replace("_", "-").split("-")[0].lower()
    return primary if primary in ("zh", "en") else DEFAULT_LANGUAGE


def message_id(message: str) -> str:
    if message in CATALOGUE:
        return message
    if message in MARSHMALLOW_DEFAULTS:
        return MARSHMALLOW_DEFAULTS[message]
    if message.startswith("Must be one of"):
        return "field.choice"
    if message.startswith(("Length must be", "Shorter than", "Longer than")):
        return "field.length"
    if message.startswith(("Must be greater", "Must be less", "Must be between")):
        return "field.range"
    return message


def translate(message: str, language: str | None = None) -> str:
    """The text of a message id in `language`; unknown messages are returned unchanged."""
    entry = CATALOGUE.get(message_id(message))
    if entry is None:
        return message
    return entry[normalise_language(language)]


def translate_errors(errors: Any, language: str | None = None) -> Any:
    """Translate every message in a (nested) marshmallow/ValidationFailed error structure."""
    if isinstance(errors, dict):
        return {key: translate_errors(value, language) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        translated = [translate_errors(value, language) for value in errors]
        return translated[0] if len(translated) == 1 and isinstance(translated[0], str) else translated
    if isinstance(errors, str):
        return translate(errors, language)
    return errors


def to_message_ids(errors: Any) -> Any:
    """Marshmallow's `{"field": ["message", …]}` to `{"field": "message.id"}` (first message per field)."""
    if isinstance(errors, dict):
        return {str(key): to_message_ids(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        if errors and all(isinstance(value, str) for value in errors):
            return message_id(errors[0])
        return [to_message_ids(value) for value in errors]
    if isinstance(errors, str):
        return message_id(errors)
    return errors


_WINDOW_MESSAGES = {
    "opens_later": {"zh": "本次征求意见将于 {opened}（{zone}）开始，届时欢迎参与。",
                    "en": "The consultation opens on {opened} ({zone})."},
    "not_open_yet": {"zh": "本次征求意见尚未开始。", "en": "The consultation is not open yet."},
    "closed": {"zh": "本次征求意见已于 {closed}（{zone}）截止。", "en": "The consultation closed on {closed} ({zone})."},
    "closed_at_unknown": {"zh": "本次征求意见已截止。", "en": "The consultation is closed."},
    "withdrawn": {"zh": "该草案已撤回，不再征求意见。", "en": "The draft was withdrawn; comments are no longer taken."},
}


def _local(iso: str | None) -> str:
    # The ISO string is already in the consultation's zone; show it to the minute.
    return iso[:16].replace("T", " ") if iso else ""


def window_closed_message(error, language: str | None = None) -> str:
    """A reader-facing sentence for a WindowClosed error, in zh or en, with times in the consultation's zone."""
    reason = getattr(error, "reason", None) or ("closed" if getattr(error, "closed_at", None) else "not_open_yet")
    if reason == "closed" and not error.closed_at:
        reason = "closed_at_unknown"
    template = _WINDOW_MESSAGES.get(reason, _WINDOW_MESSAGES["not_open_yet"])[normalise_language(language)]
    return template.format(opened=_local(error.opened_at), closed=_local(error.closed_at),
                           zone=error.time_zone or "Asia/Shanghai")

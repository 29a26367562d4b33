"""Everyday equivalents of policy vocabulary: news says 医保 where a regulation says 医疗保障.

Each group lists wordings of one concept; ``synonym_table`` turns the groups into a symmetric term → alternatives
map for ``search.linking.build_profile``. Editors add their own per policy; these are the common ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from search.analysis import normalise

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("医保", "医疗保障", "医疗保险"),
    ("社保", "社会保险"),
    ("养老金", "基本养老金", "养老保险金"),
    ("个税", "个人所得税"),
    ("公积金", "住房公积金"),
    ("房价", "住房价格", "商品房价格"),
    ("新冠", "新冠肺炎", "新型冠状病毒"),
    ("疫苗", "预防接种"),
    ("食安", "食品安全"),
    ("网购", "网络购物", "网络交易"),
    ("外卖", "网络餐饮"),
    ("电商", "电子商务"),
    ("网约车", "网络预约出租汽车"),
    ("共享单车", "互联网租赁自行车"),
    ("ai", "人工智能"),
    ("个人信息", "个人数据"),
    ("垃圾分类", "生活垃圾分类"),
    ("双减", "减轻义务教育阶段学生作业负担和校外培训负担"),
    ("残疾人", "残障人士"),
    ("低保", "最低生活保障"),
    ("彩礼", "婚约财产"),
    ("反垄断", "垄断行为"),
    ("知识产权", "知产"),
    ("著作权", "版权"),
)


def synonym_table(
    groups: Iterable[Iterable[str]] = SYNONYM_GROUPS, extra: Mapping[str, Iterable[str]] | None = None
) -> dict[str, list[str]]:
    """Symmetric map from each wording to the other wordings of its group(s), normalised."""
    table: dict[str, list[str]] = {}

    def link(words: list[str]) -> None:
        for word in words:
            alternatives = table.setdefault(word, [])
            alternatives.extend(other for other in words if other != word and other not in alternatives)

    for group in groups:
        link([normalise(word) for word in group if normalise(word)])
    for term, alternatives in (extra or {}).items():
        link([normalise(term), *(normalise(word) for word in alternatives)])
    return table


DEFAULT_SYNONYMS: dict[str, list[str]] = synonym_table()

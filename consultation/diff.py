"""Comparing two versions of a draft clause by clause, for the "what changed" view between policy versions.

Clauses are aligned by text similarity, not by number: inserting a clause in the middle renumbers every later clause,
and those must show as renumbered, not as changed. The alignment is an order-preserving dynamic programme over
pairwise similarities (like a weighted longest common subsequence); clauses left over that still closely match a
clause elsewhere are reported as moved, the rest as added or removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum
from typing import NamedTuple, Protocol

from consultation.parsing import detect_language

__all__ = [
    "ChangeKind",
    "ClauseChange",
    "ClauseLike",
    "TextSegment",
    "diff_clauses",
    "diff_text",
]


class ClauseLike(Protocol):
    @property
    def number(self) -> int: ...

    @property
    def label(self) -> str: ...

    @property
    def text(self) -> str: ...


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"  # aligned in order, text differs (the number may differ too)
    UNCHANGED = "unchanged"  # same number, same text
    RENUMBERED = "renumbered"  # same text, in order, but its number shifted because clauses before it came or went
    MOVED = "moved"  # matched a clause out of order: the clause was moved (its text may also differ)


class TextSegment(NamedTuple):
    op: str  # "equal" | "insert" | "delete"
    text: str


@dataclass(frozen=True)
class ClauseChange:
    kind: ChangeKind
    old_number: int | None
    new_number: int | None
    old_text: str | None
    new_text: str | None
    text_diff: tuple[TextSegment, ...]
    old_label: str | None = None
    new_label: str | None = None
    similarity: float = 0.0  # 0..1, between old_text and new_text; 0 for added/removed

    @property
    def text_changed(self) -> bool:
        return any(segment.op != "equal" for segment in self.text_diff)


# Below this similarity two clauses are not considered the same clause when aligning in order.
ALIGN_THRESHOLD = 0.5
# Out-of-order matches need to be more certain, since a reorder is a stronger claim than an edit. They are looked for
# before gap rewrites, so two swapped clauses are reported as moved rather than as two rewritten ones.
MOVE_THRESHOLD = 0.6
# Inside a gap between aligned clauses, a lone old clause facing a lone new one is a rewrite if they share this much.
# Unrelated clauses of one Chinese draft share many function characters (应当, 的, 本办法) and reach about 0.35.
REWRITE_THRESHOLD = 0.4

_WHITESPACE = re.compile(r"\s+")
_WORD_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def _normalised(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _similarity(a: str, b: str, floor: float = 0.0) -> float:
    """SequenceMatcher ratio of ``a`` and ``b``, or 0.0 when it is certainly below ``floor``."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    # The cheap upper bounds rule most pairs out before the quadratic comparison.
    if matcher.real_quick_ratio() < floor or matcher.quick_ratio() < floor:
        return 0.0
    return matcher.ratio()


def _tokens(text: str, language: str) -> list[str]:
    if language == "zh":
        return list(text)
    return _WORD_TOKENS.findall(text)


def diff_text(old: str, new: str, language: str | None = None) -> tuple[TextSegment, ...]:
    """Segments that turn ``old`` into ``new``: characters for Chinese, words (and the spaces between) for English.

    Joining the "equal" and "delete" segments gives ``old``; joining "equal" and "insert" gives ``new``.
    """
    lang = language or detect_language(old + new)
    old_tokens = _tokens(old, lang)
    new_tokens = _tokens(new, lang)
    matcher = SequenceMatcher(None, old_tokens, new_tokens, autojunk=False)
    segments: list[TextSegment] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if segments and segments[-1].op == op:
            segments[-1] = TextSegment(op, segments[-1].text + text)
        else:
            segments.append(TextSegment(op, text))

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", "".join(old_tokens[i1:i2]))
        else:
            add("delete", "".join(old_tokens[i1:i2]))
            add("insert", "".join(new_tokens[j1:j2]))
    return tuple(segments)


def _similarity_matrix(old_texts: list[str], new_texts: list[str]) -> list[list[float]]:
    """Pairwise similarities, with fuzzy comparisons only where they can matter.

    Identical texts score 1.0 wherever they occur. Runs of identical clauses (the bulk of any revision) are found by
    an exact sequence match first; a clause inside such a run already has its partner, so only clauses outside the
    runs are compared fuzzily, which keeps a 200-clause draft from costing 40,000 fuzzy comparisons.
    """
    similarity = [[0.0] * len(new_texts) for _ in old_texts]
    positions_in_new: dict[str, list[int]] = {}
    for j, text in enumerate(new_texts):
        positions_in_new.setdefault(text, []).append(j)
    anchored_old: set[int] = set()
    anchored_new: set[int] = set()
    matcher = SequenceMatcher(None, old_texts, new_texts, autojunk=False)
    for block in matcher.get_matching_blocks():
        anchored_old.update(range(block.a, block.a + block.size))
        anchored_new.update(range(block.b, block.b + block.size))
    loose_new = [j for j in range(len(new_texts)) if j not in anchored_new]
    for i, old_text in enumerate(old_texts):
        row = similarity[i]
        for j in positions_in_new.get(old_text, ()):
            row[j] = 1.0
        if i in anchored_old:
            continue
        for j in loose_new:
            if row[j] == 0.0:
                row[j] = _similarity(old_text, new_texts[j], floor=ALIGN_THRESHOLD)
    return similarity


def _align_in_order(similarity: list[list[float]], old: Sequence[ClauseLike], new: Sequence[ClauseLike]):
    """Order-preserving pairs (i, j) maximising total similarity; pairs below ALIGN_THRESHOLD are never used."""
    rows, cols = len(old), len(new)
    score = [[0.0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            best = max(score[i + 1][j], score[i][j + 1])
            value = similarity[i][j]
            if value >= ALIGN_THRESHOLD:
                # A tiny bonus for equal numbers settles ties between identical texts ("本条删除") in favour of the
                # pairing a reader expects.
                bonus = 1e-6 if old[i].number == new[j].number else 0.0
                best = max(best, score[i + 1][j + 1] + value + bonus)
            score[i][j] = best
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < rows and j < cols:
        value = similarity[i][j]
        bonus = 1e-6 if old[i].number == new[j].number else 0.0
        if value >= ALIGN_THRESHOLD and abs(score[i][j] - (score[i + 1][j + 1] + value + bonus)) < 1e-9:
            pairs.append((i, j))
            i += 1
            j += 1
        elif score[i][j] == score[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def diff_clauses(
    old: Sequence[ClauseLike], new: Sequence[ClauseLike], language: str | None = None
) -> list[ClauseChange]:
    """Clause-level changes from ``old`` to ``new``, in reading order of the new version.

    Removed clauses appear where they stood in the old version. ``language`` ("zh" or "en") picks character or word
    level text diffs; None detects it per clause pair.
    """
    old_texts = [_normalised(clause.text) for clause in old]
    new_texts = [_normalised(clause.text) for clause in new]
    similarity = _similarity_matrix(old_texts, new_texts)

    in_order = _align_in_order(similarity, old, new)
    matched_old = {i for i, _ in in_order}
    matched_new = {j for _, j in in_order}

    moves: list[tuple[int, int]] = []
    candidates = sorted(
        (
            (similarity[i][j], i, j)
            for i in range(len(old))
            if i not in matched_old
            for j in range(len(new))
            if j not in matched_new and similarity[i][j] >= MOVE_THRESHOLD
        ),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    for _, i, j in candidates:
        if i in matched_old or j in matched_new:
            continue
        moves.append((i, j))
        matched_old.add(i)
        matched_new.add(j)

    rewrites = _pair_rewrites_in_gaps(in_order, old_texts, new_texts, matched_old, matched_new)
    for i, j, value in rewrites:
        matched_old.add(i)
        matched_new.add(j)
        similarity[i][j] = value

    new_to_old = {j: i for i, j in in_order} | {j: i for i, j, _ in rewrites}
    moved_new_to_old = {j: i for i, j in moves}

    aligned = sorted(new_to_old.items())  # (new index, old index), increasing in both

    def old_index_of_next_aligned(after_new: int) -> int:
        return next((i for j, i in aligned if j > after_new), len(old))

    changes: list[ClauseChange] = []
    next_old = 0  # old clauses before this index are already placed

    def flush_removed(up_to: int) -> None:
        nonlocal next_old
        for i in range(next_old, up_to):
            if i not in matched_old:
                changes.append(_removed(old[i]))
        next_old = max(next_old, up_to)

    for j, clause in enumerate(new):
        if j in new_to_old:
            i = new_to_old[j]
            flush_removed(i)
            next_old = max(next_old, i + 1)
            changes.append(_paired(old[i], clause, similarity[i][j], language, moved=False))
        elif j in moved_new_to_old:
            i = moved_new_to_old[j]
            changes.append(_paired(old[i], clause, similarity[i][j], language, moved=True))
        else:
            # Clauses removed from the same gap come first, so a replacement reads "removed, then added".
            flush_removed(old_index_of_next_aligned(j))
            changes.append(_added(clause))
    flush_removed(len(old))
    return changes


def _pair_rewrites_in_gaps(
    in_order: list[tuple[int, int]],
    old_texts: list[str],
    new_texts: list[str],
    matched_old: set[int],
    matched_new: set[int],
) -> list[tuple[int, int, float]]:
    """Between two aligned clauses, one old clause facing one new clause at the same place is a rewrite."""
    rewrites: list[tuple[int, int, float]] = []
    bounds = [(-1, -1), *in_order, (len(old_texts), len(new_texts))]
    for (i0, j0), (i1, j1) in zip(bounds, bounds[1:], strict=False):
        old_gap = [i for i in range(i0 + 1, i1) if i not in matched_old]
        new_gap = [j for j in range(j0 + 1, j1) if j not in matched_new]
        if len(old_gap) == 1 and len(new_gap) == 1:
            value = _similarity(old_texts[old_gap[0]], new_texts[new_gap[0]], floor=REWRITE_THRESHOLD)
            if value >= REWRITE_THRESHOLD:
                rewrites.append((old_gap[0], new_gap[0], value))
    return rewrites


def _paired(old: ClauseLike, new: ClauseLike, similarity: float, language: str | None, moved: bool) -> ClauseChange:
    same_text = _normalised(old.text) == _normalised(new.text)
    if moved:
        kind = ChangeKind.MOVED
    elif not same_text:
        kind = ChangeKind.CHANGED
    elif old.number == new.number:
        kind = ChangeKind.UNCHANGED
    else:
        kind = ChangeKind.RENUMBERED
    # Whitespace-only differences come from re-pasting, not from drafting, so they are not shown as edits.
    segments = (TextSegment("equal", new.text),) if same_text else diff_text(old.text, new.text, language)
    return ClauseChange(
        kind=kind,
        old_number=old.number,
        new_number=new.number,
        old_text=old.text,
        new_text=new.text,
        text_diff=segments if new.text or old.text else (),
        old_label=old.label,
        new_label=new.label,
        similarity=similarity,
    )


def _added(clause: ClauseLike) -> ClauseChange:
    return ClauseChange(
        kind=ChangeKind.ADDED,
        old_number=None,
        new_number=clause.number,
        old_text=None,
        new_text=clause.text,
        text_diff=(TextSegment("insert", clause.text),) if clause.text else (),
        new_label=clause.label,
    )


def _removed(clause: ClauseLike) -> ClauseChange:
    return ClauseChange(
        kind=ChangeKind.REMOVED,
        old_number=clause.number,
        new_number=None,
        old_text=clause.text,
        new_text=None,
        text_diff=(TextSegment("delete", clause.text),) if clause.text else (),
        old_label=clause.label,
    )

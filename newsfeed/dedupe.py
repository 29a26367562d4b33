"""Recognising the same story twice: exact identity (GUID, canonical URL) and real content change (content hash) are
handled in pipeline.py; this module finds near-identical text syndicated by several outlets.

MinHash over character shingles (works for Chinese without word segmentation), computed with one-permutation hashing:
each shingle is hashed once, the hash picks one of SKETCH_BINS bins and each bin keeps its smallest value.
Two sketches agree on a bin with probability close to the Jaccard similarity of the shingle sets.

Candidates are found by locality-sensitive hashing: the bins are grouped into LSH_BANDS bands of BAND_ROWS bins, each
band hashed to one indexed 64-bit key. Texts with Jaccard 0.8 share a band key with probability ~0.93 (0.9: ~0.995),
unrelated texts almost never; candidates are then confirmed by the estimated similarity over all bins.

Simhash with a 3-bit threshold was tried first and missed ordinary syndication (a changed date and byline moved a
200-character story 6 bits), which is why MinHash is used.
"""
from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SHINGLE_CHARS = 4
# Syndicated copies agree from the first paragraphs on; sketching a bounded prefix keeps the cost per article flat.
FINGERPRINT_CHARS = 600
# Below this much text (titles, one-line teasers) a resemblance says little, so no sketch is taken.
MIN_FINGERPRINT_CHARS = 120
SKETCH_BINS = 20
BAND_ROWS = 4
LSH_BANDS = SKETCH_BINS // BAND_ROWS
NEAR_DUPLICATE_SIMILARITY = 0.7

_NOT_WORD = re.compile(r"[\W_]+")
_EMPTY_BIN = 0xFFFFFFFF
_FIBONACCI = 0x9E3779B97F4A7C15  # odd, so multiplying by it permutes the 64-bit values
_MASK64 = (1 << 64) - 1
_SIGN64 = 1 << 63

Sketch = tuple[int, ...]


def shingles(text: str) -> set[str]:
    normalised = _NOT_WORD.sub("", text.lower())[:FINGERPRINT_CHARS]
    return {normalised[i:i + SHINGLE_CHARS] for i in range(max(0, len(normalised) - SHINGLE_CHARS + 1))}


def sketch(text: str) -> Sketch | None:
    """One-permutation MinHash sketch (SKETCH_BINS 32-bit values), or None when there is too little text.

    Shingles are hashed with CRC-32 (in C, via map) spread over 64 bits by a multiplicative (Fibonacci) hash; sorting
    the values then lets each bin take its minimum from the first values seen, so the Python loop runs ~70 times
    instead of once per shingle. On 150 Chinese news texts this kept the same recall for copies with 1 in 60
    characters changed (>= 98 %) and the same separation of unrelated stories (max estimate 0.1) as BLAKE2b per shingle,
    at a third of the cost.
    """
    if len(text) < MIN_FINGERPRINT_CHARS:
        return None
    features = shingles(text)
    if len(features) < MIN_FINGERPRINT_CHARS // 2:
        return None
    spread = sorted([(value * _FIBONACCI) & _MASK64 for value in map(zlib.crc32, [
        feature.encode("utf-8", "surrogatepass") for feature in features
    ])])
    minima = [_EMPTY_BIN] * SKETCH_BINS
    filled = 0
    for value in spread:
        high = value >> 32
        slot = high % SKETCH_BINS
        if minima[slot] == _EMPTY_BIN:
            minima[slot] = high
            filled += 1
            if filled == SKETCH_BINS:
                break
    return tuple(minima)


def similarity(a: Sketch, b: Sketch) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two sketches."""
    both = [(x, y) for x, y in zip(a, b, strict=True) if x != _EMPTY_BIN or y != _EMPTY_BIN]
    if not both:
        return 0.0
    return sum(1 for x, y in both if x == y) / len(both)


def is_near_duplicate(a: Sketch | None, b: Sketch | None) -> bool:
    return a is not None and b is not None and similarity(a, b) >= NEAR_DUPLICATE_SIMILARITY


def band_keys(value: Sketch) -> tuple[int, ...]:
    """LSH_BANDS signed 64-bit keys (they fit a BIGINT column); equal keys mean BAND_ROWS bins agree."""
    keys = []
    for band in range(LSH_BANDS):
        rows = value[band * BAND_ROWS:(band + 1) * BAND_ROWS]
        material = band.to_bytes(1, "little") + b"".join(row.to_bytes(4, "little") for row in rows)
        key = int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "little")
        keys.append(key - (1 << 64) if key & _SIGN64 else key)
    return tuple(keys)


def encode_sketch(value: Sketch) -> str:
    return "".join(f"{row:08x}" for row in value)


def decode_sketch(encoded: str | None) -> Sketch | None:
    if not encoded or len(encoded) != SKETCH_BINS * 8:
        return None
    try:
        return tuple(int(encoded[i:i + 8], 16) for i in range(0, len(encoded), 8))
    except ValueError:
        return None


@dataclass
class Fingerprinted:
    id: str
    sketch: Sketch


class NearDuplicateIndex:
    """In-memory LSH index of canonical articles: database candidates plus the new articles of one batch."""

    def __init__(self, items: Iterable[Fingerprinted] = ()):
        self._by_key: dict[tuple[int, int], list[Fingerprinted]] = {}
        for item in items:
            self.add(item)

    def add(self, item: Fingerprinted) -> None:
        for band, key in enumerate(band_keys(item.sketch)):
            self._by_key.setdefault((band, key), []).append(item)

    def nearest(self, value: Sketch, keys: Sequence[int] | None = None) -> Fingerprinted | None:
        best: Fingerprinted | None = None
        best_similarity = NEAR_DUPLICATE_SIMILARITY
        seen: set[str] = set()
        for band, key in enumerate(keys if keys is not None else band_keys(value)):
            for candidate in self._by_key.get((band, key), ()):
                if candidate.id in seen:
                    continue
                seen.add(candidate.id)
                estimate = similarity(value, candidate.sketch)
                if estimate >= best_similarity:
                    best, best_similarity = candidate, estimate
        return best

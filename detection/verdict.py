"""One verdict from three kinds of evidence. The watermark is primary: it is proof, the others are opinions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    label: str  # "made_by_voicegate" | "likely_synthetic" | "inconclusive" | "no_sign_of_synthesis"
    reasons: tuple[str, ...]


def combine(watermark: dict[str, object], classifier: dict[str, object] | None, voices: dict[str, object]) -> Verdict:
    reasons = []
    if watermark.get("marked"):
        label = "made_by_voicegate"
        reasons.append(f"our watermark verified (record {watermark['record_id']}, key {watermark['key_id']})")
    else:
        label, reason = _classifier_label(classifier)
        reasons.append(reason)
    for match in voices.get("matches", []):  # type: ignore[union-attr]
        if match["above_threshold"]:
            reasons.append(f"sounds like {match['kind'].replace('_', ' ')} {match['name']!r} (similarity {match['score']})")
    return Verdict(label, tuple(reasons))


def _classifier_label(classifier: dict[str, object] | None) -> tuple[str, str]:
    if classifier is None:
        return "inconclusive", "no watermark of ours; no synthetic-speech classifier is configured"
    band = classifier["band"]
    probability = classifier["probability_synthetic"]
    if band == "synthetic":
        return "likely_synthetic", f"no watermark of ours; the classifier scores it synthetic (p={probability:.2f})"
    if band == "real":
        return "no_sign_of_synthesis", f"no watermark of ours; the classifier scores it real (p={probability:.2f})"
    return "inconclusive", f"no watermark of ours; the classifier is unsure (p={probability:.2f})"

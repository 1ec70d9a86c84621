"""Speaker-verification calibration: genuine and impostor cosine scores, EER, FAR/FRR, and a chosen threshold.

Protocol (LibriSpeech under --data):
  genuine: test-other, 5 speakers x 10 utterances. For each held-out utterance u, the 9 others are cut into three
           disjoint enrollment triplets; profile = normalized mean of the triplet's embeddings; score = cosine(profile,
           embed(u)). 5 x 10 x 3 = 150 genuine trials.
  impostor: the same 150 profiles against (a) the 251 train-clean-100 speakers (one utterance each) and (b) the other
           test-other speakers' utterances.
Honest split: the train-clean-100 impostors are split by speaker (even/odd position in the sorted list); the threshold
is chosen on the even half (the highest threshold-free point where FAR <= --target-far) and FAR is reported on the
odd half. FRR is reported on all 150 genuine trials (only 5 speakers: read it as indicative).

    .venv/bin/python bench/speaker_verification.py [--data ../shared/data] [--target-far 0.01] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicegate.audio import embedding


def _embed_files(files: list[Path]) -> np.ndarray:
    out = []
    for f in files:
        wav, rate = sf.read(f, dtype="float32")
        assert rate == 16_000, f
        out.append(embedding.embed(wav))
    return np.stack(out)


def _profiles(test_files: list[Path], test_emb: np.ndarray) -> list[tuple[str, int, np.ndarray]]:
    """(speaker, held-out index, profile) for each held-out utterance and each of 3 disjoint triplets."""
    speakers = sorted({f.parent.name for f in test_files})
    out = []
    for spk in speakers:
        idx = [i for i, f in enumerate(test_files) if f.parent.name == spk]
        for held in idx:
            rest = [i for i in idx if i != held]
            for t in range(0, len(rest) - 2, 3):
                out.append((spk, held, embedding.profile_embedding(list(test_emb[rest[t:t + 3]]))))
    return out


def far_frr(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """Accept when score >= threshold. FAR over impostor trials, FRR over genuine trials."""
    return float(np.mean(impostor >= threshold)), float(np.mean(genuine < threshold))


def eer(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold at EER) by scanning every observed score for the point where FAR and FRR are closest."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    rates = np.array([far_frr(genuine, impostor, th) for th in thresholds])
    i = int(np.argmin(np.abs(rates[:, 0] - rates[:, 1])))
    return float(rates[i].mean()), float(thresholds[i])


def threshold_at_far(impostor: np.ndarray, target: float) -> float:
    """Smallest threshold whose FAR on ``impostor`` is <= target (accept when score >= threshold)."""
    s = np.sort(impostor)
    k = int(np.floor(target * len(s)))  # at most k impostor scores may reach the threshold
    return float(np.nextafter(s[len(s) - k - 1], np.inf)) if k < len(s) else float(s[0])


def run(data: Path, target_far: float) -> dict[str, Any]:
    root = data / "librispeech"
    test_files = sorted((root / "test-other").glob("*/*.flac"))
    cohort_files = sorted((root / "train-clean-100").glob("*.flac"))
    t0 = time.perf_counter()
    test_emb, cohort_emb = _embed_files(test_files), _embed_files(cohort_files)
    embed_s = time.perf_counter() - t0
    profiles = _profiles(test_files, test_emb)
    genuine = np.array([float(test_emb[h] @ p) for _, h, p in profiles])
    prof = np.stack([p for _, _, p in profiles])
    cohort_scores = prof @ cohort_emb.T  # (profiles, 251)
    tune_imp, report_imp = cohort_scores[:, 0::2].ravel(), cohort_scores[:, 1::2].ravel()
    spk = np.array([f.parent.name for f in test_files])
    cross = np.concatenate([(test_emb[spk != s] @ p) for s, _, p in profiles])
    all_imp = np.concatenate([cohort_scores.ravel(), cross])
    chosen = math.ceil(threshold_at_far(tune_imp, target_far) * 1e4) / 1e4  # rounded up: FAR stays <= target
    e, e_th = eer(genuine, all_imp)
    grid = sorted({0.70, 0.72, 0.74, 0.75, 0.76, 0.78, 0.80, 0.82, 0.85, round(chosen, 4)})
    return {
        "n_genuine": len(genuine), "n_impostor_tune": len(tune_imp), "n_impostor_report": len(report_imp),
        "n_impostor_cross_test_other": len(cross), "embed_seconds": embed_s,
        "genuine": _dist(genuine), "impostor_train_clean_100": _dist(cohort_scores.ravel()),
        "impostor_cross_test_other": _dist(cross),
        "eer": e, "eer_threshold": e_th,
        "target_far": target_far, "chosen_threshold": chosen,
        "chosen": _rates(genuine, tune_imp, report_imp, cross, chosen),
        "grid": [dict(threshold=t, **_rates(genuine, tune_imp, report_imp, cross, t)) for t in grid],
    }


def _rates(genuine: np.ndarray, tune: np.ndarray, report: np.ndarray, cross: np.ndarray, th: float) -> dict:
    return {"far_tune": far_frr(genuine, tune, th)[0], "far_report": far_frr(genuine, report, th)[0],
            "far_cross_test_other": far_frr(genuine, cross, th)[0], "frr": far_frr(genuine, tune, th)[1]}


def _dist(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "p1": float(np.percentile(x, 1)),
            "p5": float(np.percentile(x, 5)), "p50": float(np.median(x)), "p95": float(np.percentile(x, 95)),
            "p99": float(np.percentile(x, 99)), "max": float(x.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--target-far", type=float, default=0.01)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not (args.data / "librispeech").is_dir():
        sys.exit(f"no LibriSpeech under {args.data}; see shared/data/README.md")
    r = run(args.data, args.target_far)
    if args.json:
        print(json.dumps(r))
        return
    print(f"trials: {r['n_genuine']} genuine, impostor {r['n_impostor_tune']} tune + {r['n_impostor_report']} "
          f"report (train-clean-100), {r['n_impostor_cross_test_other']} cross test-other")
    for name in ("genuine", "impostor_train_clean_100", "impostor_cross_test_other"):
        d = r[name]
        print(f"  {name:26} mean {d['mean']:.3f} sd {d['std']:.3f}  p1 {d['p1']:.3f} p5 {d['p5']:.3f} "
              f"p50 {d['p50']:.3f} p95 {d['p95']:.3f} p99 {d['p99']:.3f} max {d['max']:.3f}")
    print(f"EER {r['eer']:.2%} at {r['eer_threshold']:.3f}")
    print(f"{'threshold':>9} {'FAR tune':>9} {'FAR report':>10} {'FAR cross':>9} {'FRR':>6}")
    for g in r["grid"]:
        mark = "  <- chosen (FAR <= %.0f%% on tune)" % (100 * r["target_far"]) if g["threshold"] == round(
            r["chosen_threshold"], 4) else ""
        print(f"{g['threshold']:9.4f} {g['far_tune']:9.2%} {g['far_report']:10.2%} {g['far_cross_test_other']:9.2%} "
              f"{g['frr']:6.1%}{mark}")


if __name__ == "__main__":
    main()

"""Synthetic-speech detector: equal error rate on held-out speakers, sentences and generators, per codec condition.

Usage (from the project root):
    .venv/bin/python bench/detector_eval.py [--data ../shared/data/librispeech/train-clean-100]
        [--work /tmp/voicegate-detector] [--logo] [--real DIR --fake DIR] [--boot 1000] [--json]

Sections (each figure with its 95% bootstrap interval; the bootstrap resamples *groups*, i.e. speakers for real
speech, resynthesis and clones, voice+text for TTS, so correlated crops/augmentations are not counted as
independent):
- speed: the shipped detector on one CPU thread, as a multiple of real time (30 s clip, 4 s windows).
- heldout: the shipped weights on the eval split (50 LibriSpeech speakers and a fifth of the sentences nobody
  trained or calibrated on), every clip under every condition (clean, mp3, opus, telephone, noise, reverb):
  EER overall, per generator, per condition; rates at the operating point (p >= 0.5) and per band.
- logo (--logo): leave-one-generator-out. For each generator G a model is retrained from scratch without any clip
  of G (same seed and recipe), calibrated on the calib split without G, then scored on all of G's clips (every
  split) against the held-out real speakers. This is the honest figure for a generator nobody has seen.
- external (--real DIR --fake DIR): any labelled set, decoded with voicegate.audio.decode; EER and accuracy at
  the operating point, band rates.

The corpus and features come from detection/train_detector.py's cache under --work (rebuilt deterministically when
absent). The baseline of the same run is chance (EER 50%). --json prints one JSON object on the last line.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detection import train_detector as td
from detection.classifier import Detector, load_detector

logger = logging.getLogger("bench.detector_eval")


# ---------------------------------------------------------------------------------------------------- metrics


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(equal error rate, threshold) for scores where higher means synthetic (label 1)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    pos, neg = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    tpr = np.concatenate([[0.0], np.cumsum(y) / pos])
    fpr = np.concatenate([[0.0], np.cumsum(1 - y) / neg])
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    thr = float(s[max(i - 1, 0)]) if i > 0 else float(s[0]) + 1e-6
    return float((fnr[i] + fpr[i]) / 2), thr


def bootstrap_eer(scores: np.ndarray, labels: np.ndarray, groups: list[str], n_boot: int,
                  seed: int = 0) -> tuple[float, float, float]:
    """EER and its 95% interval, resampling groups (with replacement) within each class."""
    point = eer(scores, labels)[0]
    rng = np.random.default_rng(seed)
    by_class = []
    for cls in (0, 1):
        g = sorted({groups[i] for i in range(len(groups)) if labels[i] == cls})
        members = {k: [] for k in g}
        for i in range(len(groups)):
            if labels[i] == cls:
                members[groups[i]].append(i)
        by_class.append([np.array(members[k]) for k in g])
    stats = []
    for _ in range(n_boot):
        idx = np.concatenate([cls[j] for cls in by_class for j in rng.integers(0, len(cls), len(cls))])
        stats.append(eer(scores[idx], labels[idx])[0])
    lo, hi = np.percentile(stats, [2.5, 97.5]) if stats else (point, point)
    return point, float(lo), float(hi)


def band_rates(p: np.ndarray, labels: np.ndarray, low: float, high: float) -> dict[str, dict[str, float]]:
    out = {}
    for cls, name in ((0, "real"), (1, "synthetic")):
        q = p[labels == cls]
        if q.size:
            out[name] = {"n": int(q.size), "called_real": float(np.mean(q <= low)),
                         "inconclusive": float(np.mean((q > low) & (q < high))),
                         "called_synthetic": float(np.mean(q >= high)),
                         "above_operating_point": float(np.mean(q >= 0.5))}
    return out


def summary(p: np.ndarray, logits: np.ndarray, labels: np.ndarray, groups: list[str], n_boot: int,
            bands: tuple[float, float]) -> dict[str, object]:
    e, lo, hi = bootstrap_eer(logits, labels, groups, n_boot)
    acc = float(np.mean((p >= 0.5) == (labels == 1)))
    return {"eer": e, "eer_ci95": [lo, hi], "n_real": int((labels == 0).sum()), "n_synthetic": int(labels.sum()),
            "accuracy_at_operating_point": acc, "bands": band_rates(p, labels, *bands)}


# ---------------------------------------------------------------------------------------------------- sections


def speed(det: Detector, seconds: float = 30.0) -> dict[str, float]:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    x = (0.1 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size))
    det.score(x.astype(np.float32))  # warm-up
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        det.score(x.astype(np.float32))
        runs.append(time.perf_counter() - t0)
    best = min(runs)
    return {"clip_s": seconds, "seconds_per_clip_median": float(np.median(runs)),
            "x_real_time_median": seconds / float(np.median(runs)), "x_real_time_best": seconds / best, "threads": 1}


def _probs(det: Detector, logits: np.ndarray) -> np.ndarray:
    return np.array([det.calibrate(float(v)) for v in logits])


def heldout(det: Detector, clips: list[td.Clip], feats: torch.Tensor, n_boot: int) -> dict[str, object]:
    idx = [i for i, c in enumerate(clips) if c.split == "eval"]
    ev = [clips[i] for i in idx]
    logits = td.logits_of(det.net, feats[idx])
    p = _probs(det, logits)
    y = np.array([c.label for c in ev])
    groups = [f"{c.generator}|{c.group}" for c in ev]
    bands = det.thresholds

    def sub(mask: np.ndarray) -> dict[str, object]:
        return summary(p[mask], logits[mask], y[mask], [g for g, m in zip(groups, mask) if m], n_boot, bands)

    out: dict[str, object] = {"overall": sub(np.ones(len(ev), bool))}
    gens = np.array([c.generator for c in ev])
    conds = np.array([c.condition for c in ev])
    out["per_generator"] = {g: sub((gens == g) | (y == 0)) for g in td.GENERATORS if (gens == g).any()}
    out["per_condition"] = {c: sub(conds == c) for c in td.CONDITIONS}
    return out


def logo(clips: list[td.Clip], feats: torch.Tensor, seed: int, n_boot: int) -> dict[str, object]:
    out = {}
    for g in td.GENERATORS:
        if not any(c.generator == g for c in clips):
            continue
        t0 = time.monotonic()
        x, y = td.split_tensors(clips, feats, "train", exclude=g)
        net = td.train_model(x, y, td.TrainConfig(seed=seed))
        xc, yc = td.split_tensors(clips, feats, "calib", exclude=g)
        lc = td.logits_of(net, xc)
        a, b = td.fit_platt(lc, yc.numpy())
        bands = td.choose_bands(1 / (1 + np.exp(-(a * lc + b))), yc.numpy())
        idx = [i for i, c in enumerate(clips) if c.generator == g or (c.generator == "real" and c.split == "eval")]
        logits = td.logits_of(net, feats[idx])
        p = 1 / (1 + np.exp(-(a * logits + b)))
        labels = np.array([clips[i].label for i in idx])
        groups = [f"{clips[i].generator}|{clips[i].group}" for i in idx]
        out[g] = summary(p, logits, labels, groups, n_boot, bands)
        out[g]["fold_seconds"] = round(time.monotonic() - t0, 1)
        logger.info("logo %s: EER %.3f (%.0f s)", g, out[g]["eer"], out[g]["fold_seconds"])
    return out


def external(det: Detector, real: Path, fake: Path, n_boot: int) -> dict[str, object]:
    from voicegate.audio.decode import decode_audio

    logits, labels, groups = [], [], []
    for label, folder in ((0, real), (1, fake)):
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in
                           {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".mp4"}):
            audio = decode_audio(path.read_bytes())
            logits.append(det.raw_logit(audio.samples))
            labels.append(label)
            groups.append(str(path))
    lg, y = np.array(logits), np.array(labels)
    return summary(_probs(det, lg), lg, y, groups, n_boot, det.thresholds)


# ---------------------------------------------------------------------------------------------------- report


def _fmt(name: str, r: dict[str, object]) -> str:
    lo, hi = r["eer_ci95"]  # type: ignore[misc]
    bands = r["bands"]  # type: ignore[index]
    real = bands.get("real", {})  # type: ignore[union-attr]
    syn = bands.get("synthetic", {})  # type: ignore[union-attr]
    return (f"{name:<14} EER {100 * r['eer']:5.1f}% [{100 * lo:4.1f}, {100 * hi:4.1f}]  "  # type: ignore[operator]
            f"n={r['n_real']}/{r['n_synthetic']}  acc@0.5 {100 * r['accuracy_at_operating_point']:5.1f}%  "  # type: ignore[operator]
            f"real->synthetic {100 * real.get('called_synthetic', 0):4.1f}% real->inconcl "
            f"{100 * real.get('inconclusive', 0):4.1f}%  synth->synthetic {100 * syn.get('called_synthetic', 0):5.1f}% "
            f"synth->real {100 * syn.get('called_real', 0):4.1f}%")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/librispeech/train-clean-100")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "voicegate-detector")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--logo", action="store_true", help="leave-one-generator-out retraining (minutes per fold)")
    ap.add_argument("--real", type=Path, help="folder of real speech files (external labelled set)")
    ap.add_argument("--fake", type=Path, help="folder of synthetic speech files (external labelled set)")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--no-heldout", action="store_true", help="skip the built-in held-out evaluation")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    det = load_detector(device="cpu")
    results: dict[str, object] = {"operating_point": 0.5, "bands": dict(zip(("low", "high"), det.thresholds)),
                                  "baseline": {"chance_eer": 0.5}, "speed": speed(det)}
    print(f"speed: {results['speed']['x_real_time_median']:.0f}x real time on 1 thread "  # type: ignore[index]
          f"(baseline: 100x required)")
    torch.set_num_threads(2)
    if (args.real is None) != (args.fake is None):
        ap.error("--real and --fake go together")
    if args.real is not None:
        results["external"] = external(det, args.real, args.fake, args.boot)
        print(_fmt("external", results["external"]))  # type: ignore[arg-type]
    if not args.no_heldout:
        if not args.data.is_dir():
            print(f"no data at {args.data}: held-out evaluation skipped")
        else:
            _, clips, feats = td.prepare(args.data, args.work, args.seed)
            results["heldout"] = h = heldout(det, clips, feats, args.boot)
            print(f"bands: real <= {det.thresholds[0]:.3f} < inconclusive < {det.thresholds[1]:.3f} <= synthetic; "
                  "operating point p >= 0.5")
            print(_fmt("overall", h["overall"]))  # type: ignore[arg-type]
            for k, v in h["per_generator"].items():  # type: ignore[attr-defined]
                print(_fmt(f"gen:{k}", v))
            for k, v in h["per_condition"].items():  # type: ignore[attr-defined]
                print(_fmt(f"cond:{k}", v))
            if args.logo:
                results["logo"] = lg = logo(clips, feats, args.seed, args.boot)
                for k, v in lg.items():
                    print(_fmt(f"unseen:{k}", v))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

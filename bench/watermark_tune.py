"""Calibrate the watermark codec's constants on tuning clips: the step for a target SNR, and the
reliability table the detector weights groups by.

Run on clips the robustness benchmark never scores (default: LibriSpeech train-clean-100 from the
101st file on; bench/watermark_robustness.py scores test-other). It embeds each clip with the current
constants, prints the mean SNR and the STEP that would give --target-snr, then applies the benchmark's
attacks and measures, for every group at the clip's true alignment, its agreement with the embedded
lattice (cos 2 pi (p / step - dither - bit / 2), about 1 intact and 0 destroyed) binned by the features
the detector sees: the table to paste into voicegate/audio/watermark.py as RELIABILITY_TABLE.

    .venv/bin/python bench/watermark_tune.py [--data DIR] [--clips 24] [--offset 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import watermark_robustness as bench  # noqa: E402

wm = bench.wm
TUNING_ATTACKS = (
    "mp3_64k", "mp3_32k", "aac_64k", "opus_24k", "opus_16k", "g711_mulaw_8k", "highpass_500",
    "white_noise_20db", "pink_noise_20db", "echo_150ms_-9db", "mix_-10db",
)
_MIN_WEIGHT = 0.05
_MAX_DELAY_COLUMNS = 3  # codecs delay the audio (mp3: about 70 ms); search this many group columns


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    return 10.0 * math.log10(bench.power(x) / bench.power(y - x))


def agreement(
    attacked: np.ndarray, record: int, secrets: wm._Secrets
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group agreement at the best alignment within the codec delay, and the groups' table indices."""
    power = wm.band_power(attacked)
    log_amp = wm.tile_log_amp(power)
    levels = wm.clip_levels(log_amp)
    i, j = wm.reliability_features(log_amp, wm._TILE_FRAMES * wm._FINE, levels)
    feat = wm._scaled(power, 1.0, levels)
    unit = feat.bit_phase / np.maximum(np.abs(feat.bit_phase), 1e-12)
    coded = wm._coded_by_group(secrets, record)
    best: tuple[float, np.ndarray, int] | None = None
    for delay in range(_MAX_DELAY_COLUMNS):
        position = (np.arange(unit.shape[0]) - delay) % wm._PERIOD_COLUMNS
        target = np.exp(-2j * np.pi * (secrets.dither[position] + coded[position] / 2.0))
        for sub in range(wm._SUB):
            cos = (unit[:, sub, :] * target).real * feat.valid[:, sub, None]
            if best is None or cos.mean() > best[0]:
                best = (float(cos.mean()), cos, sub)
    assert best is not None
    _, cos, sub = best
    starts = np.arange(cos.shape[0]) * wm._SUB + sub
    keep = starts < i.shape[0]
    return cos[keep], i[starts[keep]], j[starts[keep]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(__file__).resolve().parents[1] / "../shared/data/librispeech/train-clean-100"
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--offset", type=int, default=100, help="skip this many files of --data first")
    parser.add_argument("--target-snr", type=float, default=30.5)
    parser.add_argument("--min-count", type=int, default=20, help="cells seen fewer times get the mean")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    files = bench.audio_files(args.data)[args.offset : args.offset + args.clips]
    if len(files) < 2:  # the mixing attack mixes in another clip
        raise SystemExit(f"need at least 2 audio files under {args.data} after the first {args.offset}")
    clips = [bench.load(f) for f in files]
    rng = np.random.default_rng(1)
    secrets = wm._secrets(bench.KEY)
    shape = wm._RELIABILITY.shape
    total, count = np.zeros(shape), np.zeros(shape)
    snrs = []
    ctx = bench.Context(others=clips)
    for n, x in enumerate(clips):
        record = int(rng.integers(0, 2**32))
        y = wm.embed(x, bench.SR, record, bench.KEY)
        snrs.append(snr_db(x, y))
        ctx.others = clips[:n] + clips[n + 1 :]
        for name in TUNING_ATTACKS:
            cos, i, j = agreement(bench.ATTACKS[name](y, rng, ctx), record, secrets)
            np.add.at(total, (i.ravel(), j.ravel()), cos.ravel())
            np.add.at(count, (i.ravel(), j.ravel()), 1)
        print(f"clip {n + 1}/{len(clips)}: SNR {snrs[-1]:.1f} dB", file=sys.stderr)
    # Cells speech rarely reaches (a noise-like host has every tile near the loud level and the floor)
    # get the mean agreement, and no cell gets zero: a clean clip of any kind must still decode.
    mean = float(total.sum() / count.sum())
    table = np.where(count >= args.min_count, total / np.maximum(count, 1), mean).clip(_MIN_WEIGHT, 1.0)
    mean_snr = float(np.mean(snrs))
    step = wm.STEP * 10 ** ((mean_snr - args.target_snr) / 20.0)  # mark energy scales with step squared
    print(f"clips {len(clips)}  mean SNR {mean_snr:.2f} dB (min {min(snrs):.2f}) at STEP {wm.STEP}")
    print(f"STEP for {args.target_snr} dB: {step:.4f}")
    print("RELIABILITY_TABLE = " + json.dumps([[round(float(v), 2) for v in row] for row in table]))
    if args.json:
        print(json.dumps({
            "clips": len(clips), "mean_snr_db": mean_snr, "min_snr_db": min(snrs), "step": wm.STEP,
            "step_for_target": step, "table": table.round(3).tolist(), "counts": count.astype(int).tolist(),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

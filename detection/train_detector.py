"""Train the synthetic-speech detector (detection/classifier.py) reproducibly, and write its manifest.

Usage (from the project root):
    .venv/bin/python -m detection.train_detector --real ../shared/data/librispeech/train-clean-100 \
        --out detection/weights/detector_v1.pt [--work /tmp/voicegate-detector] [--seed 0] [--threads 2]

Data (every split decided by a seeded shuffle, written to the manifest):
- real: one LibriSpeech utterance per speaker; speakers split train / calib / eval, up to 3 4-s crops each.
- synthetic, one generator per label: piper_joe (the base voice), piper_clone (FastEngine fitted on LibriSpeech
  speakers: the product's cloned voices), kokoro (the quality engine, QualityEngine, speaking random voice states
  shaped like fitted ones: a pack or base timbre plus seeded noise, a random pitch position: many voices
  cheaply), kokoro_clone (QualityEngine fitted on the piper_clone speakers: a real fit takes minutes, and its
  gradient-fitted timbre lies far outside the packs' cloud, where the noisy voices never go), espeak (several voices and rates),
  flite (kal, kal16, slt, rms, awb), festival (kal_diphone), world (pyworld analysis/synthesis of real
  utterances) and griffinlim (torchaudio Griffin-Lim from the magnitude spectrogram of real utterances). TTS
  text comes from SENTENCES below, split by sentence; resynthesis and clone fitting follow the speaker split, so
  no eval speaker or sentence is trained on.
- augmentation: clean, mp3 (24-64 kbit/s), opus (12-32 kbit/s), telephone (8 kHz G.711 mu-law, 300-3400 Hz),
  noise (coloured, 5-25 dB SNR), reverb (synthetic exponential-decay room impulse responses, RT60 0.2-0.9 s).
  Train and calib clips get two random conditions each; eval clips are scored under every condition (the bench).

Generated audio is cached under --work (deterministic given the seed), so bench/detector_eval.py can reuse it.
flite and festival (apt packages) are used here only, for training data; nothing at run time needs them.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse
import functools
import hashlib
import json
import logging
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

from detection.classifier import SAMPLE_RATE, DetectorNet, LfccFrontEnd, ModelConfig, normalize_level

logger = logging.getLogger("detection.train_detector")

CROP = int(4.0 * SAMPLE_RATE)
GENERATORS = ("piper_joe", "piper_clone", "kokoro", "kokoro_clone", "espeak", "flite", "festival", "world", "griffinlim")
CONDITIONS = ("clean", "mp3", "opus", "telephone", "noise", "reverb")
SPLITS = ("train", "calib", "eval")
N_EVAL_SPEAKERS = 50
N_CALIB_SPEAKERS = 25
RESYNTH_TRAIN_SPEAKERS = 100  # resynthesis of every train speaker would cost minutes for little gain
RESYNTH_SAMPLES = int(4.5 * SAMPLE_RATE)  # one 4.5 s excerpt per speaker is resynthesized

# Written for this project (no corpus text): varied length, topic, punctuation, numbers and names.
SENTENCES = (
    "The birch canoe slid on the smooth planks while the children watched from the dock.",
    "Please remember to bring your umbrella, because the forecast calls for heavy rain this afternoon.",
    "Our meeting has been moved to Thursday at half past three in the small conference room.",
    "He counted forty seven paper cranes before he finally gave up and went to bed.",
    "The bakery on the corner sells warm rolls every morning before sunrise.",
    "Could you tell me how to get to the central train station from here?",
    "A thin layer of frost covered the windshield, so she scraped it off with a credit card.",
    "The museum will stay open late on Fridays throughout the summer season.",
    "I honestly had no idea that the old lighthouse was still working.",
    "Turn left at the second traffic light, then keep going until you see the blue fence.",
    "The committee voted to postpone the decision until more data becomes available.",
    "My grandmother grew tomatoes, beans and sunflowers in a tiny backyard garden.",
    "Thank you for calling; all of our agents are currently helping other customers.",
    "The river flooded twice last spring, and the bridge was closed for several weeks.",
    "When the orchestra began to play, the whole hall fell completely silent.",
    "Your package was delivered to the front porch at eleven fifteen this morning.",
    "She quietly folded the letter and slipped it into the pocket of her coat.",
    "There are three kinds of people in this world, and I never remember the third.",
    "The engineers tested the new pump for six hours without a single failure.",
    "If the battery runs low, the device will switch into a power saving mode.",
    "We watched the storm roll in across the valley from the top of the hill.",
    "The quarterly report shows a modest increase in sales across most regions.",
    "Nobody expected the quiet librarian to win the regional chess tournament.",
    "Pour the batter into a greased pan and bake it for about twenty five minutes.",
    "The cat jumped onto the kitchen counter and knocked over a glass of milk.",
    "According to the schedule, the last bus leaves the depot at ten forty.",
    "Several volunteers spent the weekend cleaning up litter along the beach.",
    "It is important to drink plenty of water when you exercise in hot weather.",
    "The professor paused, adjusted her glasses, and asked if there were any questions.",
    "Fresh snow had fallen overnight, hiding every footprint in the courtyard.",
    "Please enter your account number followed by the pound key.",
    "The old clock in the hallway chimed exactly twelve times at midnight.",
    "They drove for hours through the desert without seeing another car.",
    "The recipe calls for two cups of flour, a pinch of salt and one egg.",
    "I would like to book a table for four people on Saturday evening.",
    "The wind carried the smell of pine needles and wood smoke down the trail.",
    "After a long debate, the city council approved the new bicycle lanes.",
    "His favorite song played on the radio just as he pulled into the driveway.",
    "The laboratory results should be ready by the end of next week.",
    "A flock of geese flew low over the lake, honking loudly as they passed.",
    "Remember that the library closes early on public holidays.",
    "She painted the fence a bright shade of green that the neighbors disliked.",
    "The pilot announced that we would begin our descent in about twenty minutes.",
    "Many early maps showed islands that simply did not exist.",
    "We are sorry, but the number you have dialed is not in service.",
    "The farmer checked the sky, shook his head, and went back inside.",
    "Every Tuesday the market fills with stalls selling cheese, bread and honey.",
    "The software update fixes a bug that caused the application to crash on startup.",
    "Their youngest son learned to ride a bicycle in a single afternoon.",
    "The hikers reached the summit just before the clouds closed in.",
    "Could you please speak a little more slowly so that I can take notes?",
    "The ship's captain ordered the crew to lower the sails before the squall.",
    "I left my keys on the table by the door, right next to the mail.",
    "The final exam will cover chapters seven through twelve of the textbook.",
    "A small brown dog followed us all the way home from the park.",
    "The price of coffee has nearly doubled over the past three years.",
    "Lightning struck the tall oak tree, splitting it neatly down the middle.",
    "Please keep your seat belt fastened while the sign is illuminated.",
    "The children built an enormous sandcastle with towers, walls and a moat.",
    "He repaired the broken chair with nothing more than glue and patience.",
    "The conference will bring together researchers from more than thirty countries.",
    "Our neighbors are moving to a smaller apartment closer to the city center.",
    "The hotel offers free breakfast between seven and ten in the morning.",
    "Sunlight streamed through the stained glass windows of the old chapel.",
    "You can return the item within thirty days if you keep the receipt.",
    "The detective noticed a faint scratch on the edge of the window frame.",
    "Heavy traffic is expected on the highway because of the holiday weekend.",
    "The violinist tuned her instrument carefully before stepping onto the stage.",
    "We planted a row of maple trees along the northern edge of the field.",
    "Press one for billing questions, or stay on the line to speak with an operator.",
    "The marathon runners crossed the finish line to loud cheers from the crowd.",
    "An unusual silence settled over the village after the factory closed.",
    "The new vaccine was tested on thousands of volunteers before approval.",
    "My brother always insists on reading the instructions twice.",
    "The tide came in quickly and washed away our towels and sandals.",
    "Please confirm your appointment by replying yes to this message.",
    "The architect sketched a house with wide windows facing the ocean.",
    "During the power outage we played cards by candlelight.",
    "The team celebrated their victory with pizza and a long bus ride home.",
    "Scientists discovered a new species of frog in the mountain rainforest.",
    "The printer on the third floor is out of paper again.",
    "She speaks four languages and is learning a fifth in her spare time.",
    "The train was delayed by nearly an hour because of a signal failure.",
    "A gentle breeze rustled the leaves as the sun sank below the horizon.",
    "Your password must contain at least twelve characters and one number.",
    "The mayor promised to repair every pothole in the city before winter.",
    "He whistled a cheerful tune while he washed the dishes after dinner.",
    "The gallery is showing photographs taken during the nineteen sixties.",
    "We ran out of firewood on the second night of the camping trip.",
    "The doctor recommended rest, fluids and a short walk every afternoon.",
    "A large crowd gathered outside the stadium hours before the concert began.",
    "The instructions were written in tiny print on the back of the box.",
    "Please leave a message after the tone, and I will return your call.",
    "The baker's apprentice burned the first batch of cookies but saved the second.",
    "The fog was so thick that we could barely see the end of the pier.",
    "Interest rates are expected to remain unchanged for the rest of the year.",
    "The kitten slept peacefully in a basket near the warm fireplace.",
    "Two students stayed after class to ask about the homework assignment.",
    "The highway patrol closed the mountain pass because of falling rocks.",
    "It took the carpenter three days to build the wooden staircase.",
    "My phone battery died just as the taxi driver called to say he had arrived.",
    "The garden was full of roses, lilies and tall purple foxgloves.",
    "Visitors are asked not to feed the animals or tap on the glass.",
    "The economist warned that the recovery would be slow and uneven.",
    "We heard an owl calling from the woods behind the cabin all night long.",
    "The package contains a charger, a cable and a short user guide.",
    "The swimmers waited nervously on the starting blocks for the signal.",
    "Please review the attached document and send me your comments by Monday.",
    "The ancient city walls were built more than two thousand years ago.",
    "A street musician played the accordion outside the busy train station.",
    "The thermostat is set to twenty degrees during the day and eighteen at night.",
    "The children giggled when the clown's tiny car backfired.",
    "After dinner we walked along the canal and watched the boats drift past.",
    "Our flight number is four two seven, departing from gate nine.",
    "The restaurant is famous for its spicy noodles and homemade dumplings.",
    "The student forgot her lines halfway through the school play.",
    "Dark clouds gathered over the harbor as the fishing boats returned.",
    "This offer is valid only while supplies last, so act quickly.",
    "The carpenter measured the board twice and cut it once.",
    "Most of the snow had melted by the time the sun came out.",
)

ESPEAK_VOICES = ("en-us", "en-us+f3", "en-us+m3", "en-gb", "en-gb+f2", "en-gb-scotland", "en-gb-x-rp+f4",
                 "en-029", "en-us-nyc+m5", "en-gb-x-gbclan")
FLITE_VOICES = ("kal", "kal16", "slt", "rms", "awb")
TTS_BINARIES = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
# Kokoro voice states as fitting produces them: start timbre (a style pack's or the base), perturbed like the
# fit's CMA-ES search (z ~ N(0, KOKORO_NOISE^2) times the per-dimension std of the pack timbres), and a position on
# the pitch axis inside the part of PITCH_RANGE that gives human pitch.
KOKORO_NOISE = 0.5
KOKORO_PITCH = (-0.3, 1.3)


@dataclass
class Item:
    """One clean 16 kHz clip in the cache: label 1 synthetic, 0 real; ``group`` is what the bootstrap resamples."""

    key: str
    generator: str  # "real" or one of GENERATORS
    split: str
    group: str  # speaker for real/resynthesis/clones, sentence pair for TTS
    path: str
    label: int


# ---------------------------------------------------------------------------------------------------- splits


def speaker_split(real_dir: Path, seed: int) -> dict[str, str]:
    """speaker id -> split, decided by a seeded shuffle of the sorted speaker ids."""
    speakers = sorted({p.name.split("-")[0] for p in real_dir.glob("*.flac")})
    rng = random.Random(seed)
    rng.shuffle(speakers)
    out = {s: "eval" for s in speakers[:N_EVAL_SPEAKERS]}
    out.update({s: "calib" for s in speakers[N_EVAL_SPEAKERS:N_EVAL_SPEAKERS + N_CALIB_SPEAKERS]})
    out.update({s: "train" for s in speakers[N_EVAL_SPEAKERS + N_CALIB_SPEAKERS:]})
    return out


def sentence_split(index: int) -> str:
    return "eval" if index % 5 == 0 else "calib" if index % 5 == 1 else "train"


def sentence_pairs(split: str, n: int, rng: random.Random) -> list[tuple[str, str]]:
    """n texts of two sentences from one split (two sentences: >= 4 s for every engine, no padding needed)."""
    pool = [i for i in range(len(SENTENCES)) if sentence_split(i) == split]
    out = []
    for _ in range(n):
        a, b = rng.sample(pool, 2)
        out.append((f"s{a:03d}+s{b:03d}", f"{SENTENCES[a]} {SENTENCES[b]}"))
    return out


# ---------------------------------------------------------------------------------------------------- generators


def _to16k(x: np.ndarray, rate: int) -> np.ndarray:
    if x.ndim > 1:
        x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = math.gcd(rate, SAMPLE_RATE)
        x = resample_poly(x.astype(np.float64), SAMPLE_RATE // g, rate // g)
    return np.asarray(x, np.float32)


def _read_any(path: Path) -> np.ndarray:
    x, rate = sf.read(str(path), dtype="float32")
    return _to16k(x, rate)


def _run_tts(cmd: list[str], wav: Path) -> np.ndarray:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return _read_any(wav)


def gen_espeak(text: str, rng: random.Random, tmp: Path) -> tuple[np.ndarray, str]:
    voice = rng.choice(ESPEAK_VOICES)
    speed, pitch = rng.randint(130, 190), rng.randint(30, 70)
    wav = tmp / "espeak.wav"
    x = _run_tts(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text], wav)
    return x, voice


def gen_flite(text: str, rng: random.Random, tmp: Path) -> tuple[np.ndarray, str]:
    voice = rng.choice(FLITE_VOICES)
    wav = tmp / "flite.wav"
    return _run_tts(["flite", "-voice", voice, "-t", text, "-o", str(wav)], wav), voice


def gen_festival(text: str, rng: random.Random, tmp: Path) -> tuple[np.ndarray, str]:
    txt, wav = tmp / "festival.txt", tmp / "festival.wav"
    txt.write_text(text)
    return _run_tts(["text2wave", str(txt), "-o", str(wav)], wav), "kal_diphone"


def gen_world(real: np.ndarray, rng: random.Random) -> np.ndarray:
    """pyworld analysis/synthesis (DIO + StoneMask, CheapTrick, D4C) of a real utterance, 16 kHz."""
    import pyworld

    x = real.astype(np.float64)
    f0, t = pyworld.dio(x, SAMPLE_RATE, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE)
    sp = pyworld.cheaptrick(x, f0, t, SAMPLE_RATE)
    ap = pyworld.d4c(x, f0, t, SAMPLE_RATE)
    return pyworld.synthesize(f0, sp, ap, SAMPLE_RATE, frame_period=5.0).astype(np.float32)


def gen_griffinlim(real: np.ndarray, rng: random.Random) -> np.ndarray:
    import torchaudio

    n_fft = rng.choice((512, 1024))
    spec = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=n_fft // 4, power=1.0)
    gl = torchaudio.transforms.GriffinLim(n_fft=n_fft, hop_length=n_fft // 4, power=1.0, n_iter=32)
    torch.manual_seed(rng.randint(0, 2**31))
    with torch.inference_mode():
        y = gl(spec(torch.from_numpy(real)))
    return y.numpy().astype(np.float32)


def gen_kokoro(engine: object, text: str, rng: random.Random, tmp: Path) -> tuple[np.ndarray, str]:
    """QualityEngine speaking ``text`` with a random fitted-like voice state; 24 kHz -> 16 kHz. ``tmp`` is unused
    (same signature as the system TTS generators)."""
    from synthesis.engines.kokoro import SAMPLE_RATE as KOKORO_RATE
    from synthesis.engines.kokoro import KokoroVoice

    voice, timbre, pitch = kokoro_voice(engine, rng)
    state = KokoroVoice(timbre=[round(float(v), 5) for v in timbre], pitch=round(pitch, 4)).to_bytes()
    chunks = list(engine.stream(text, state))  # type: ignore[attr-defined]
    return _to16k(np.concatenate(chunks), KOKORO_RATE), voice


def kokoro_voice(engine: object, rng: random.Random) -> tuple[str, np.ndarray, float]:
    """(label, (128,) timbre, pitch position): a start timbre (pack or base) + seeded noise at the fit's scale."""
    model = engine.model()  # type: ignore[attr-defined]
    starts = {"base": np.asarray(engine.base_voice().timbre, np.float64),  # type: ignore[attr-defined]
              **{k: np.asarray(v, np.float64) for k, v in sorted(model.pack_timbres.items())}}
    # The fit's own search scale (QualityEngine.fit_voice): per-dimension std of the packs, floored at 0.02.
    scale = np.maximum(np.std(list(model.pack_timbres.values()), axis=0), 0.02)
    start = rng.choice(sorted(starts))
    noise = np.random.default_rng(rng.randint(0, 2**32 - 1)).standard_normal(scale.size)
    pitch = rng.uniform(*KOKORO_PITCH)
    return f"{start}~{pitch:.2f}", starts[start] + KOKORO_NOISE * scale * noise, pitch


def _engine_clip(engine: object, text: str, voice_state: bytes) -> np.ndarray:
    chunks = list(engine.stream(text, voice_state))  # type: ignore[attr-defined]
    return _to16k(np.concatenate(chunks), engine.sample_rate)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------- corpus


@dataclass
class CorpusPlan:
    """How many clean clips per generator and split (defaults: a few hundred per class, minutes on 2 cores)."""

    tts_per_split: dict[str, int] = field(default_factory=lambda: {"train": 60, "calib": 15, "eval": 25})
    clone_speakers: dict[str, int] = field(default_factory=lambda: {"train": 2, "calib": 1, "eval": 1})
    clone_texts: int = 12
    real_crops: int = 3


def _save(cache: Path, key: str, x: np.ndarray) -> str:
    path = cache / f"{key}.flac"
    if not path.exists():
        peak = float(np.max(np.abs(x))) or 1.0
        sf.write(str(path), (x / peak * 0.9).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return str(path)


def build_corpus(real_dir: Path, cache: Path, seed: int, plan: CorpusPlan | None = None,
                 generators: Iterable[str] = GENERATORS) -> list[Item]:
    """Generate (or reuse from ``cache``) every clean clip; returns the item list in a fixed order."""
    plan = plan or CorpusPlan()
    cache.mkdir(parents=True, exist_ok=True)
    spk_split = speaker_split(real_dir, seed)
    real_files = {p.name.split("-")[0]: p for p in sorted(real_dir.glob("*.flac"))}
    items: list[Item] = []
    for spk, path in sorted(real_files.items()):
        items.append(Item(f"real_{spk}", "real", spk_split[spk], spk, str(path), 0))
    gens = set(generators)
    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        for name, fn in (("espeak", gen_espeak), ("flite", gen_flite), ("festival", gen_festival)):
            if name in gens:
                items += _tts_items(name, fn, cache, seed, plan, tmp)
    for name, fn2 in (("world", gen_world), ("griffinlim", gen_griffinlim)):
        if name in gens:
            items += _resynth_items(name, fn2, real_files, spk_split, cache, seed)
    if "piper_joe" in gens or "piper_clone" in gens:
        items += _piper_items(gens, real_files, spk_split, cache, seed, plan)
    if "kokoro" in gens or "kokoro_clone" in gens:
        from synthesis.engines.kokoro import QualityEngine  # loads the model only if a clip is missing

        if "kokoro" in gens:
            items += _tts_items("kokoro", functools.partial(gen_kokoro, QualityEngine()), cache, seed, plan, Path())
        if "kokoro_clone" in gens:  # fitted as the service fits: the guard listens with the offline recognizer
            engine = QualityEngine.deployed(cache.parent / "models")
            items += _clone_items("kokoro_clone", engine, real_files, spk_split, cache, seed, plan)
    return items


def _tts_items(name: str, fn: Callable[..., tuple[np.ndarray, str]], cache: Path, seed: int, plan: CorpusPlan,
               tmp: Path) -> list[Item]:
    if name in TTS_BINARIES and shutil.which(TTS_BINARIES[name]) is None:
        logger.warning("%s not installed: generator skipped", name)
        return []
    out, t0, made = [], time.monotonic(), 0
    for split in SPLITS:
        rng = random.Random(f"{seed}-{name}-{split}")
        for i, (pair, text) in enumerate(sentence_pairs(split, plan.tts_per_split[split], rng)):
            key = f"{name}_{split}_{i:03d}"
            voice_rng = random.Random(f"{seed}-{key}")
            path = cache / f"{key}.flac"
            if path.exists():
                meta = json.loads((cache / f"{key}.json").read_text())
            else:
                t1 = time.monotonic()
                x, voice = fn(text, voice_rng, tmp)
                _save(cache, key, x)
                meta = {"voice": voice, "text": pair, "seconds": round(time.monotonic() - t1, 2),
                        "audio_seconds": round(x.size / SAMPLE_RATE, 2)}
                (cache / f"{key}.json").write_text(json.dumps(meta))
                made += 1
            out.append(Item(key, name, split, f"{meta['voice']}|{pair}", str(path), 1))
    logger.info("%s: %d clips (%d generated in %.0f s)", name, len(out), made, time.monotonic() - t0)
    return out


def _resynth_items(name: str, fn: Callable[[np.ndarray, random.Random], np.ndarray], real_files: dict[str, Path],
                   spk_split: dict[str, str], cache: Path, seed: int) -> list[Item]:
    out = []
    train = sorted(s for s, sp in spk_split.items() if sp == "train")[:RESYNTH_TRAIN_SPEAKERS]
    for spk, src in sorted(real_files.items()):
        if spk_split[spk] == "train" and spk not in train:
            continue
        key = f"{name}_{spk}"
        if not (cache / f"{key}.flac").exists():
            rng = random.Random(f"{seed}-{key}")
            x = _read_any(src)
            start = rng.randint(0, max(0, x.size - RESYNTH_SAMPLES))
            _save(cache, key, fn(x[start:start + RESYNTH_SAMPLES], rng))
        out.append(Item(key, name, spk_split[spk], spk, str(cache / f"{key}.flac"), 1))
    logger.info("%s: %d clips", name, len(out))
    return out


def _piper_items(gens: set[str], real_files: dict[str, Path], spk_split: dict[str, str], cache: Path, seed: int,
                 plan: CorpusPlan) -> list[Item]:
    from synthesis.engines.piper import FastEngine

    engine = FastEngine()
    out = []
    if "piper_joe" in gens:
        for split in SPLITS:
            rng = random.Random(f"{seed}-piper_joe-{split}")
            for i, (pair, text) in enumerate(sentence_pairs(split, plan.tts_per_split[split], rng)):
                key = f"piper_joe_{split}_{i:03d}"
                if not (cache / f"{key}.flac").exists():
                    _save(cache, key, _engine_clip(engine, text, b""))
                out.append(Item(key, "piper_joe", split, pair, str(cache / f"{key}.flac"), 1))
        logger.info("piper_joe: %d clips", len(out))
    if "piper_clone" in gens:
        out += _clone_items("piper_clone", engine, real_files, spk_split, cache, seed, plan)
    return out


def _clone_items(name: str, engine: object, real_files: dict[str, Path], spk_split: dict[str, str], cache: Path,
                 seed: int, plan: CorpusPlan) -> list[Item]:
    """``engine`` fitted (its own fit_voice, as enrollment runs it) on one utterance of each of a split's first
    speakers, then speaking the split's sentences in that voice."""
    out = []
    for split in SPLITS:
        # Longest utterances of the split's speakers (the engine needs >= 3 s of enrollment; more fits better).
        spks = sorted((s for s, sp in spk_split.items() if sp == split), key=lambda s: (-sf.info(str(real_files[s])).frames, s))
        for spk in spks[:plan.clone_speakers[split]]:
            state_path = cache / f"{name}_state_{spk}.json"
            if not state_path.exists():
                t0 = time.monotonic()
                state_path.write_bytes(engine.fit_voice([_read_any(real_files[spk])]))  # type: ignore[attr-defined]
                logger.info("%s: fitted speaker %s in %.0f s", name, spk, time.monotonic() - t0)
            state = state_path.read_bytes()
            rng = random.Random(f"{seed}-clone-{spk}")
            for i, (pair, text) in enumerate(sentence_pairs(split, plan.clone_texts, rng)):
                key = f"{name}_{spk}_{i:03d}"
                if not (cache / f"{key}.flac").exists():
                    _save(cache, key, _engine_clip(engine, text, state))
                out.append(Item(key, name, split, spk, str(cache / f"{key}.flac"), 1))
    logger.info("%s: %d clips", name, len(out))
    return out


# ---------------------------------------------------------------------------------------------------- augmentation


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def codec_roundtrip(x: np.ndarray, codec: str, kbps: int) -> np.ndarray:
    """Encode (libmp3lame / libopus) and decode again through ffmpeg pipes; same length as the input."""
    exe = _ffmpeg()
    fmt, enc = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus")}[codec]
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1"]
    encoded = subprocess.run([exe, "-v", "error", *raw, "-i", "pipe:0", "-c:a", enc, "-b:a", f"{kbps}k", "-f", fmt,
                              "pipe:1"], input=x.astype(np.float32).tobytes(), capture_output=True, check=True,
                             timeout=60).stdout
    decoded = subprocess.run([exe, "-v", "error", "-i", "pipe:0", *raw, "pipe:1"], input=encoded,
                             capture_output=True, check=True, timeout=60).stdout
    y = np.frombuffer(decoded, np.float32)
    out = np.zeros_like(x)
    out[:min(y.size, x.size)] = y[:x.size]
    return out


def telephone(x: np.ndarray) -> np.ndarray:
    """8 kHz, 300-3400 Hz band, G.711 mu-law, back to 16 kHz."""
    y = resample_poly(x.astype(np.float64), 1, 2)
    y = sosfilt(butter(4, [300, 3400], btype="band", fs=8000, output="sos"), y)
    y = np.clip(y / (np.max(np.abs(y)) + 1e-9) * 0.7, -1, 1)
    mu = 255.0
    q = np.round((np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)) * 127) / 127
    y = np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu
    return resample_poly(y, 2, 1)[:x.size].astype(np.float32)


def add_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise (white filtered by a random one-pole low-pass) at 5-25 dB SNR."""
    n = rng.standard_normal(x.size)
    alpha = rng.uniform(0.0, 0.95)
    n = sosfilt(np.array([[1.0, 0, 0, 1.0, -alpha, 0]]), n)
    snr = rng.uniform(5, 25)
    p_x, p_n = np.mean(x.astype(np.float64) ** 2) + 1e-12, np.mean(n ** 2) + 1e-12
    return (x + n * math.sqrt(p_x / (p_n * 10 ** (snr / 10)))).astype(np.float32)


def synthetic_rir(rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying noise tail after a direct path; RT60 0.2-0.9 s, some early reflections."""
    rt60 = rng.uniform(0.2, 0.9)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail = sosfilt(butter(2, rng.uniform(2000, 7000), fs=SAMPLE_RATE, output="sos"), tail)
    rir = tail * rng.uniform(0.2, 0.6)
    rir[0] = 1.0
    for _ in range(4):
        rir[rng.integers(40, 800)] += rng.uniform(-0.5, 0.5)
    return rir / np.sqrt(np.sum(rir ** 2))


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return fftconvolve(x.astype(np.float64), synthetic_rir(rng))[:x.size].astype(np.float32)


def augment(x: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """One of CONDITIONS applied to a (n,) float32 16 kHz clip, then a random level (the model is level-free)."""
    if condition == "mp3":
        y = codec_roundtrip(x, "mp3", int(rng.choice([24, 32, 48, 64])))
    elif condition == "opus":
        y = codec_roundtrip(x, "opus", int(rng.choice([12, 16, 24, 32])))
    elif condition == "telephone":
        y = telephone(x)
    elif condition == "noise":
        y = add_noise(x, rng)
    elif condition == "reverb":
        y = reverb(x, rng)
    else:
        y = x
    return (normalize_level(y) * 10 ** (rng.uniform(-20, 6) / 20)).astype(np.float32)


def crops(x: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to n non-overlapping 4 s crops (random offset); a clip shorter than 4 s is tiled (rare: real only)."""
    if x.size < CROP:
        x = np.tile(x, math.ceil(CROP / x.size))
    k = max(1, min(n, x.size // CROP))
    offset = int(rng.integers(0, x.size - k * CROP + 1))
    return [x[offset + i * CROP: offset + (i + 1) * CROP] for i in range(k)]


@dataclass
class Clip:
    """One 4 s augmented clip, ready to featurize."""

    key: str
    generator: str
    split: str
    group: str
    condition: str
    label: int
    audio: np.ndarray


def make_clips(items: list[Item], seed: int, plan: CorpusPlan | None = None,
               eval_all_conditions: bool = True) -> list[Clip]:
    """Crops and augmentations: train/calib get two random conditions per crop, eval every condition."""
    plan = plan or CorpusPlan()
    out = []
    for it in items:
        rng = np.random.default_rng(int(hashlib.sha256(f"{seed}-{it.key}".encode()).hexdigest()[:8], 16))
        x = _read_any(Path(it.path))
        n = plan.real_crops if it.generator == "real" else 1
        for c, crop in enumerate(crops(x, n, rng)):
            if it.split == "eval" and eval_all_conditions:
                conds = list(CONDITIONS)
            else:
                conds = [str(rng.choice(CONDITIONS)), str(rng.choice(CONDITIONS[1:]))]
            for cond in conds:
                out.append(Clip(f"{it.key}#{c}", it.generator, it.split, it.group, cond, it.label,
                                augment(crop, cond, rng)))
    return out


# ---------------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 14
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-3
    crop_frames: int = 300  # random 3 s of each 4 s clip per step


def featurize(clips: list[Clip], cfg: ModelConfig | None = None, batch: int = 64) -> torch.Tensor:
    """(n_clips, 3 * n_lfcc, frames) features of the same front end the detector runs."""
    front = LfccFrontEnd(cfg or ModelConfig()).eval()
    feats = []
    with torch.inference_mode():
        for i in range(0, len(clips), batch):
            wav = torch.from_numpy(np.stack([normalize_level(c.audio) for c in clips[i:i + batch]]))
            feats.append(front(wav))
    return torch.cat(feats)


def train_model(feats: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig = TrainConfig(),
                model_cfg: ModelConfig | None = None) -> DetectorNet:
    """Fit the TDNN on precomputed features (balanced BCE, AdamW, cosine schedule); seeded."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = DetectorNet(model_cfg or ModelConfig())
    model = net.tdnn
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(labels) / cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    pos = float(labels.sum())
    pos_weight = torch.tensor((len(labels) - pos) / max(pos, 1.0))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    frames = feats.shape[-1]
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(labels), generator=gen)
        total = 0.0
        for i in range(0, len(order), cfg.batch):
            idx = order[i:i + cfg.batch]
            start = int(torch.randint(0, frames - cfg.crop_frames + 1, (1,), generator=gen))
            logits = model(feats[idx, :, start:start + cfg.crop_frames])
            loss = loss_fn(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        logger.info("epoch %d loss %.4f", epoch + 1, total / len(labels))
    return net.eval()


def logits_of(net: DetectorNet, feats: torch.Tensor, batch: int = 256) -> np.ndarray:
    net.eval()
    with torch.inference_mode():
        return torch.cat([net.tdnn(feats[i:i + batch]) for i in range(0, len(feats), batch)]).numpy()


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling with balanced class weights and Platt's smoothed targets (so a separable held-out split
    cannot drive the slope to infinity): p = sigmoid(a * logit + b)."""
    x, y = torch.tensor(logits, dtype=torch.float64), torch.tensor(labels, dtype=torch.float64)
    n_pos, n_neg = float(y.sum()), float((1 - y).sum())
    target = torch.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    w = torch.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    ab = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([ab], max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (w * torch.nn.functional.binary_cross_entropy_with_logits(ab[0] * x + ab[1], target, reduction="none")).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return float(ab[0].detach()), float(ab[1].detach())


def choose_bands(p: np.ndarray, labels: np.ndarray, max_fp: float = 0.01, max_miss: float = 0.02) -> tuple[float, float]:
    """low/high on calibrated probabilities: 'synthetic' when p >= high, 'real' when p <= low, in between
    'inconclusive'. Each is the split-conformal order statistic of the calib clips: a new real clip exchangeable
    with them reaches ``high`` with probability at most max_fp, a new synthetic one falls to ``low`` with
    probability at most max_miss (with fewer than 1/max_fp - 1 real clips high is their maximum, a looser bound).
    A plain quantile interpolates between the top two of ~120 real clips and let 3.9% of unseen real speakers
    through at a 1% target (session 13). Clamped so that low <= 0.5 <= high."""
    real, synth = np.sort(p[labels == 0]), np.sort(p[labels == 1])
    high = float(real[min(len(real), math.ceil((len(real) + 1) * (1 - max_fp))) - 1]) if len(real) else 0.5
    low = float(synth[max(1, math.floor((len(synth) + 1) * max_miss)) - 1]) if len(synth) else 0.5
    return min(low, 0.5), max(high, 0.5)


def split_tensors(clips: list[Clip], feats: torch.Tensor, split: str,
                  exclude: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    idx = [i for i, c in enumerate(clips) if c.split == split and c.generator != exclude]
    return feats[idx], torch.tensor([float(clips[i].label) for i in idx])


# ---------------------------------------------------------------------------------------------------- main


def prepare(real_dir: Path, work: Path, seed: int) -> tuple[list[Item], list[Clip], torch.Tensor]:
    """Corpus -> clips -> features, cached under ``work`` (features keyed by the item list and seed)."""
    items = build_corpus(real_dir, work / "clips", seed)
    digest = hashlib.sha256(json.dumps([asdict(i) for i in items]).encode()).hexdigest()[:16]
    cache = work / f"features_{seed}_{digest}.pt"
    if cache.exists():
        blob = torch.load(cache, weights_only=True)
        meta = json.loads(blob["meta"].numpy().tobytes().decode())
        clips = [Clip(m[0], m[1], m[2], m[3], m[4], m[5], np.zeros(0, np.float32)) for m in meta]
        return items, clips, blob["feats"]
    t0 = time.monotonic()
    clips = make_clips(items, seed)
    logger.info("%d augmented clips in %.0f s", len(clips), time.monotonic() - t0)
    feats = featurize(clips)
    meta = [[c.key, c.generator, c.split, c.group, c.condition, c.label] for c in clips]
    torch.save({"feats": feats, "meta": torch.frombuffer(bytearray(json.dumps(meta).encode()), dtype=torch.uint8)},
               cache)
    return items, clips, feats


def manifest(items: list[Item], clips: list[Clip], seed: int, bands: tuple[float, float], platt: tuple[float, float],
             weights: Path, train_s: float, extra: dict[str, object]) -> dict[str, object]:
    per: dict[str, dict[str, int]] = {}
    for it in items:
        per.setdefault(it.generator, {s: 0 for s in SPLITS})[it.split] += 1
    clip_counts: dict[str, dict[str, int]] = {}
    for c in clips:
        clip_counts.setdefault(c.generator, {s: 0 for s in SPLITS})[c.split] += 1
    speakers = {s: sorted(it.group for it in items if it.generator == "real" and it.split == s) for s in SPLITS}
    clone = {s: sorted({it.group for it in items if it.generator.endswith("_clone") and it.split == s}) for s in SPLITS}
    return {
        "weights_file": weights.name,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "bytes": weights.stat().st_size,
        "seed": seed,
        "model": asdict(ModelConfig()),
        "train": asdict(TrainConfig(seed=seed)),
        "train_seconds": round(train_s, 1),
        "calibration": {"platt_a": platt[0], "platt_b": platt[1], "fitted_on": "calib split"},
        "bands": {"low": bands[0], "high": bands[1], "operating_point": 0.5,
                  "rule": "p <= low: real; p >= high: synthetic; else inconclusive. Split-conformal order statistics "
                          "of the calib clips: a new synthetic clip falls to low with probability <= 2%, a new "
                          "real clip reaches high with probability <= 1% (clamped around 0.5)"},
        "generators": {
            "real": "LibriSpeech train-clean-100, one utterance per speaker, up to 3 x 4 s crops",
            "piper_joe": "synthesis.engines.piper.FastEngine().stream(text, b'') (Piper en_US-joe-medium)",
            "piper_clone": "FastEngine fitted (default FitConfig) on one LibriSpeech utterance per speaker",
            "kokoro_clone": "QualityEngine.deployed() fitted (its default config: gradient timbre fit, WORLD conversion "
                            "with the intelligibility guard) on one LibriSpeech utterance per speaker, the same "
                            "speakers as piper_clone",
            "kokoro": "synthesis.engines.kokoro.QualityEngine().stream(text, KokoroVoice(...).to_bytes()) (Kokoro-82M "
                      "int8, 24 kHz resampled to 16 kHz); one voice state per clip, drawn like a fitted voice (no "
                      "real fit: ~130 syntheses each): timbre = base or one of the style packs' timbres "
                      f"(seeded choice) + N(0, {KOKORO_NOISE}^2) x per-dimension std of the pack timbres (floor "
                      f"0.02, the fit's CMA-ES scale); pitch position uniform {list(KOKORO_PITCH)}",
            "espeak": f"espeak-ng {_version(['espeak-ng', '--version'])}; voices {list(ESPEAK_VOICES)}, rate 130-190",
            "flite": f"flite (apt flite 2.2); voices {list(FLITE_VOICES)}",
            "festival": "festival text2wave (apt festival 2.5, festvox-kallpc16k: kal_diphone)",
            "world": "pyworld 0.3.5 DIO+StoneMask/CheapTrick/D4C analysis-synthesis of real utterances",
            "griffinlim": "torchaudio GriffinLim (32 iterations, n_fft 512/1024) from real magnitude spectrograms",
        },
        "generation_seconds": _generation_seconds(items),
        "clean_items": per,
        "augmented_clips": clip_counts,
        "conditions": list(CONDITIONS),
        "speakers": speakers,
        "clone_speakers": clone,
        "sentence_split": {s: [i for i in range(len(SENTENCES)) if sentence_split(i) == s] for s in SPLITS},
        **extra,
    }


def _generation_seconds(items: list[Item]) -> dict[str, dict[str, float]]:
    """Wall-clock synthesis time of the TTS clips, as recorded beside each clip when it was generated."""
    out: dict[str, dict[str, float]] = {}
    for it in items:
        meta_path = Path(it.path).with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if it.label == 1 and meta_path.exists() else {}
        if "seconds" in meta:
            row = out.setdefault(it.generator, {"clips": 0, "seconds": 0.0, "audio_seconds": 0.0})
            row["clips"] += 1
            row["seconds"] = round(row["seconds"] + meta["seconds"], 1)
            row["audio_seconds"] = round(row["audio_seconds"] + meta["audio_seconds"], 1)
    return out


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=10).stdout.split("\n")[0].strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, required=True, help="folder of real 16 kHz FLAC (train-clean-100)")
    ap.add_argument("--out", type=Path, required=True, help="weights file to write (.pt); manifest beside it")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "voicegate-detector")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    items, clips, feats = prepare(args.real, args.work, args.seed)
    t0 = time.monotonic()
    x, y = split_tensors(clips, feats, "train")
    net = train_model(x, y, TrainConfig(seed=args.seed))
    train_s = time.monotonic() - t0
    xc, yc = split_tensors(clips, feats, "calib")
    lc = logits_of(net, xc)
    a, b = fit_platt(lc, yc.numpy())
    p = 1 / (1 + np.exp(-(a * lc + b)))
    low, high = choose_bands(p, yc.numpy())
    net.platt.copy_(torch.tensor([a, b]))
    net.bands.copy_(torch.tensor([low, high]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out)
    info = manifest(items, clips, args.seed, (low, high), (a, b), args.out, train_s,
                    {"command": "python -m detection.train_detector " + " ".join(sys.argv[1:] if argv is None else argv)})
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    logger.info("wrote %s (%d bytes, sha256 %s); platt a=%.3f b=%.3f; bands %.3f/%.3f", args.out, info["bytes"],
                info["sha256"], a, b, low, high)
    print(info["sha256"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

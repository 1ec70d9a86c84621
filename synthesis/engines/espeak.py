"""English text to IPA with the espeak-ng that ships inside piper-tts (library and data; no system package).

espeak-ng keeps global state (the selected voice, its buffers) and is not thread-safe, so every caller in the
process, Piper's own phonemizer included, goes through :data:`LOCK`.
"""

from __future__ import annotations

import re
import threading

LOCK = threading.Lock()
_VOICE = "en-us"
_initialized = False


def ipa(text: str) -> str:
    """One normalized sentence -> espeak-ng IPA with stress marks and the clause punctuation kept."""
    global _initialized
    from piper import espeakbridge
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    with LOCK:
        if not _initialized:
            espeakbridge.initialize(str(ESPEAK_DATA_DIR))
            _initialized = True
        espeakbridge.set_voice(_VOICE)
        clauses = espeakbridge.get_phonemes(text)
    out = []
    for phonemes, terminator, _end_of_sentence in clauses:
        # "(fr)...(en)" marks words espeak reads in another language's rules; the marks themselves are not speech.
        out.append(re.sub(r"\([^)]+\)", "", phonemes) + terminator + (" " if terminator in ",:;" else ""))
    return "".join(out).strip()

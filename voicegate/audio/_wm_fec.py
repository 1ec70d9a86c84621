"""Tail-biting convolutional code for the watermark payload (private helper of ``watermark.py``).

Rate 1/3, constraint length 7, generators 133/171/165 (octal), the code of LTE's control channels:
free distance 15, and with soft decisions it corrects the scattered errors that codecs and noise leave.
Tail-biting (the encoder starts in the state it ends in) spends no tail bits, so the 168 coded bits of
a 56-bit payload fill exactly one watermark period.
"""

from __future__ import annotations

import numpy as np

_K = 7
_N_STATES = 1 << (_K - 1)
_GENERATORS = (0o133, 0o171, 0o165)


def _parity(values: np.ndarray) -> np.ndarray:
    bits = np.zeros_like(values)
    for shift in range(_K):
        bits ^= (values >> shift) & 1
    return bits


# Output bits of every 7-bit register value (newest input bit in the top position): shape (128, 3).
_REGISTER = np.arange(1 << _K)
_OUTPUTS = np.stack([_parity(_REGISTER & g) for g in _GENERATORS], axis=1).astype(np.int8)
# Each next state ns has two predecessors: register (ns << 1) | lsb, for lsb in (0, 1).
_NEXT = np.arange(_N_STATES)
_PRED_REG = np.stack([(_NEXT << 1) | 0, (_NEXT << 1) | 1], axis=1)  # (64, 2) register values
_PRED_STATE = _PRED_REG & (_N_STATES - 1)
_PRED_SIGNS = 1.0 - 2.0 * _OUTPUTS[_PRED_REG]  # (64, 2, 3): +1 for a coded 0, -1 for a coded 1


def encode(bits: np.ndarray) -> np.ndarray:
    """Encode ``bits`` (shape (n,), values 0/1) into ``3 n`` coded bits, tail-biting."""
    bits = np.asarray(bits, dtype=np.int64)
    state = 0
    for b in bits[-(_K - 1):]:  # start in the state the last six bits leave behind
        state = ((int(b) << (_K - 1)) | state) >> 1
    out = np.empty((bits.size, 3), dtype=np.int8)
    for i, b in enumerate(bits):
        register = (int(b) << (_K - 1)) | state
        out[i] = _OUTPUTS[register]
        state = register >> 1
    return out.reshape(-1)


def decode(soft: np.ndarray, n_bits: int, wrap: int = 24) -> np.ndarray:
    """Soft-decision Viterbi decoding of a tail-biting codeword.

    ``soft`` has shape (3 n_bits,), positive where a coded 0 is likely; its magnitude is confidence.
    Decodes the circularly extended sequence (``wrap`` steps each side) from an unknown start state
    and keeps the middle, the usual wrap-around approximation of the tail-biting optimum.
    Returns n_bits decoded bits (0/1, int8).
    """
    steps = np.asarray(soft, dtype=np.float64).reshape(n_bits, 3)
    wrap = min(wrap, n_bits)
    extended = np.concatenate([steps[-wrap:], steps, steps[:wrap]])
    branch = (extended @ _PRED_SIGNS.reshape(-1, 3).T).reshape(-1, _N_STATES, 2)  # (steps, 64, 2), all at once
    metric = np.zeros(_N_STATES)
    choices = np.empty((extended.shape[0], _N_STATES), dtype=np.int8)
    for t in range(extended.shape[0]):
        candidates = metric[_PRED_STATE] + branch[t]  # (64, 2)
        choices[t] = candidates[:, 1] > candidates[:, 0]  # ties keep the first predecessor
        metric = candidates.max(axis=1)
        metric -= metric.max()
    state = int(np.argmax(metric))
    decided = np.empty(extended.shape[0], dtype=np.int8)
    for t in range(extended.shape[0] - 1, -1, -1):
        decided[t] = state >> (_K - 2)  # the newest bit sits at the top of the 6-bit state
        state = int(_PRED_STATE[state, choices[t, state]])
    return decided[wrap : wrap + n_bits]

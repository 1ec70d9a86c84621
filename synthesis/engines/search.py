"""Derivative-free search for voice fitting: a small CMA-ES, deterministic given its seed.

The WORLD conversion (``fast``, and ``quality`` on top of its style) is fitted by maximizing a speaker-embedding
cosine over a handful of parameters through WORLD, which has no gradient we can reach, so it uses this. (The
quality engine's timbre, 128 numbers, is fitted by gradient instead: ``synthesis/engines/kokoro_torch.py``.)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """CMA-ES budget and seed; ``generations * popsize`` embedding evaluations."""

    seed: int = 0
    generations: int = 5
    popsize: int = 8
    sigma: float = 0.5


def cma_es(f: Callable[[np.ndarray], float], start: np.ndarray, config: FitConfig) -> tuple[np.ndarray, float]:
    """Maximize f with a small (mu/mu_w, lambda)-CMA-ES from ``start``; returns (best point, best value).

    Follows Hansen's tutorial (rank-one + rank-mu covariance update, cumulative step-size adaptation).
    """
    rng = np.random.default_rng(config.seed)
    dim = start.size
    lam = config.popsize
    mu = lam // 2
    w = np.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    w /= w.sum()
    mueff = 1.0 / np.sum(w ** 2)
    cc = (4 + mueff / dim) / (dim + 4 + 2 * mueff / dim)
    cs = (mueff + 2) / (dim + mueff + 5)
    c1 = 2 / ((dim + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((dim + 2) ** 2 + mueff))
    damps = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (dim + 1)) - 1) + cs
    chin = math.sqrt(dim) * (1 - 1 / (4 * dim) + 1 / (21 * dim ** 2))
    mean, sigma = np.asarray(start, np.float64).copy(), config.sigma
    cov, ps, pc = np.eye(dim), np.zeros(dim), np.zeros(dim)
    best_z, best_v = mean.copy(), f(mean)
    for gen in range(config.generations):
        vals, vecs = np.linalg.eigh(cov)
        sqrt_cov = vecs @ np.diag(np.sqrt(np.maximum(vals, 1e-20))) @ vecs.T
        inv_sqrt = vecs @ np.diag(1 / np.sqrt(np.maximum(vals, 1e-20))) @ vecs.T
        ys = rng.standard_normal((lam, dim)) @ sqrt_cov.T
        xs = mean + sigma * ys
        scores = np.array([f(x) for x in xs])
        order = np.argsort(-scores)
        if scores[order[0]] > best_v:
            best_v, best_z = float(scores[order[0]]), xs[order[0]].copy()
        y_sel = ys[order[:mu]]
        y_w = w @ y_sel
        mean = mean + sigma * y_w
        ps = (1 - cs) * ps + math.sqrt(cs * (2 - cs) * mueff) * (inv_sqrt @ y_w)
        hsig = np.linalg.norm(ps) / math.sqrt(1 - (1 - cs) ** (2 * (gen + 1))) / chin < 1.4 + 2 / (dim + 1)
        pc = (1 - cc) * pc + hsig * math.sqrt(cc * (2 - cc) * mueff) * y_w
        cov = ((1 - c1 - cmu) * cov + c1 * (np.outer(pc, pc) + (not hsig) * cc * (2 - cc) * cov)
               + cmu * (y_sel.T * w) @ y_sel)
        sigma *= math.exp((cs / damps) * (np.linalg.norm(ps) / chin - 1))
        logger.debug("cma-es generation %d: best %.4f sigma %.3f", gen, best_v, sigma)
    return best_z, best_v

"""Compiled kernels of the phase provider (numba): simulated-bifurcation dynamics over many
replicas, a steepest single-flip descent and a tabu search.

Every kernel is a deterministic function of its arguments: no threads, no fast-math, and its
own random numbers from per-replica 64-bit states that the caller passes in (and gets back,
advanced): a xorshift64* stream, or a counter hashed by splitmix64's output function. The
coupling matrix arrives in compressed-row form, symmetric (each coupling stored in both rows),
with the fields ``h`` apart; ``f_i = Σ_j J_ij s_j + h_i`` is the local field of spin ``i`` and
flipping it changes the Ising energy by ``−2 s_i f_i``.

Imported only when a phase anneal or readout runs, so importing the Φ domain stays cheap;
numba caches the compiled code beside this file (or in ``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = ["descend", "local_fields", "sb_steps", "tabu"]

_SCALE = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True)
def _next(state: Any) -> tuple[Any, float]:
    """Advance a xorshift64* state; return it and a uniform number in [0, 1)."""
    state ^= state >> np.uint64(12)
    state ^= state << np.uint64(25)
    state ^= state >> np.uint64(27)
    word = state * np.uint64(2685821657736338717)
    return state, float(word >> np.uint64(11)) * _SCALE


@njit(cache=True)
def _bits(counter: Any) -> Any:
    """64 random bits from a 64-bit counter (splitmix64's output function): no state carried
    from one draw to the next, so a loop of draws pipelines."""
    z = counter * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def local_fields(indptr: Any, indices: Any, data: Any, h: Any, spins: Any) -> Any:
    """``f = J s + h`` for every replica (rows of ``spins``)."""
    replicas, n = spins.shape
    fields = np.empty((replicas, n), np.float64)
    for r in range(replicas):
        for i in range(n):
            total = h[i]
            for p in range(indptr[i], indptr[i + 1]):
                total += data[p] * spins[r, indices[p]]
            fields[r, i] = total
    return fields


@njit(cache=True)
def sb_steps(
    indptr: Any,
    indices: Any,
    data: Any,
    omega: Any,
    x: Any,
    y: Any,
    spins: Any,
    fields: Any,
    states: Any,
    start: int,
    stop: int,
    steps: int,
    dt: float,
    gain: float,
    noise: float,
) -> int:
    """Discrete simulated bifurcation, steps ``start`` to ``stop`` of ``steps``, per replica.

    Each oscillator has a position ``x`` (in-phase amplitude) and momentum ``y`` (quadrature).
    Per step, synchronously over the oscillators:
    ``y += dt·(−(1 − p(t) + ω_i)·x − gain·f)`` plus a uniform kick of amplitude ``noise``,
    ``x += dt·y``, and an inelastic wall at ``|x| = 1`` (``x`` clipped, ``y`` zeroed). The
    pump ``p(t) = t/steps`` ramps from 0 to 1; ``f`` is the local field of the signs of ``x``,
    kept up to date incrementally when a sign changes. Returns the number of sign changes.
    """
    replicas, n = x.shape
    changed = np.empty(n, np.int64)
    flips = 0
    for r in range(replicas):
        xr, yr, sr, fr = x[r], y[r], spins[r], fields[r]
        state = states[r]
        for k in range(start, stop):
            detune = 1.0 - k / steps
            if noise > 0.0:
                # One hash gives four 16-bit uniform kicks.
                word = np.uint64(0)
                for i in range(n):
                    if i & 3 == 0:
                        word = _bits(state + np.uint64(i >> 2))
                    u = float(word & np.uint64(0xFFFF)) * (2.0 / 65536.0) - 1.0
                    word >>= np.uint64(16)
                    yr[i] += dt * (noise * u - (detune + omega[i]) * xr[i] - gain * fr[i])
                state += np.uint64((n + 3) >> 2)
            else:
                for i in range(n):
                    yr[i] += dt * (-(detune + omega[i]) * xr[i] - gain * fr[i])
            m = 0
            for i in range(n):
                xi = xr[i] + dt * yr[i]
                if xi > 1.0:
                    xi = 1.0
                    yr[i] = 0.0
                elif xi < -1.0:
                    xi = -1.0
                    yr[i] = 0.0
                xr[i] = xi
                si = 1 if xi >= 0.0 else -1
                if si != sr[i]:
                    sr[i] = si
                    changed[m] = i
                    m += 1
            for q in range(m):
                i = changed[q]
                twice = 2.0 * sr[i]
                for p in range(indptr[i], indptr[i + 1]):
                    fr[indices[p]] += twice * data[p]
            flips += m
        states[r] = state
    return flips


@njit(cache=True)
def descend(indptr: Any, indices: Any, data: Any, h: Any, spins: Any) -> int:
    """Steepest single-flip descent of every replica (in place) to a 1-flip local minimum.
    Returns the number of flips."""
    replicas, n = spins.shape
    fields = local_fields(indptr, indices, data, h, spins)
    flips = 0
    for r in range(replicas):
        sr, fr = spins[r], fields[r]
        while True:
            best, where = -1e-9, -1
            for i in range(n):
                delta = -2.0 * sr[i] * fr[i]
                if delta < best:
                    best, where = delta, i
            if where < 0:
                break
            sr[where] = -sr[where]
            twice = 2.0 * sr[where]
            for p in range(indptr[where], indptr[where + 1]):
                fr[indices[p]] += twice * data[p]
            flips += 1
    return flips


@njit(cache=True)
def tabu(
    indptr: Any,
    indices: Any,
    data: Any,
    h: Any,
    spins: Any,
    energies: Any,
    iterations: int,
    tenure: int,
    states: Any,
) -> int:
    """Tabu search from every replica (in place): ``iterations`` single flips, each the best
    move not tabu (a move that beats the replica's best energy is always allowed; ties broken at
    random); a flipped
    spin stays tabu for ``tenure`` plus a random 0..``tenure`` iterations. Each replica ends at
    the best configuration it visited; ``energies`` (the replicas' energies on entry) is
    updated to match. Returns the number of flips."""
    replicas, n = spins.shape
    fields = local_fields(indptr, indices, data, h, spins)
    until = np.zeros(n, np.int64)
    best_spins = np.empty(n, spins.dtype)
    flips = 0
    for r in range(replicas):
        sr, fr = spins[r], fields[r]
        state = states[r]
        energy = energies[r]
        best_energy = energy
        best_spins[:] = sr
        until[:] = 0
        for it in range(iterations):
            pick, pick_delta, ties = -1, np.inf, 0
            for i in range(n):
                delta = -2.0 * sr[i] * fr[i]
                if delta > pick_delta + 1e-9:
                    continue
                if until[i] > it and energy + delta >= best_energy - 1e-9:
                    continue
                if delta < pick_delta - 1e-9:
                    pick, pick_delta, ties = i, delta, 1
                else:  # an equally good move: each of the tied moves is kept with equal chance
                    ties += 1
                    state, u = _next(state)
                    if u * ties < 1.0:
                        pick = i
            if pick < 0:
                break
            sr[pick] = -sr[pick]
            energy += pick_delta
            twice = 2.0 * sr[pick]
            for p in range(indptr[pick], indptr[pick + 1]):
                fr[indices[p]] += twice * data[p]
            state, u = _next(state)
            until[pick] = it + 1 + tenure + int(u * (tenure + 1))
            flips += 1
            if energy < best_energy - 1e-9:
                best_energy = energy
                best_spins[:] = sr
        sr[:] = best_spins
        energies[r] = best_energy
        states[r] = state
    return flips

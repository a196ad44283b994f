"""Beam search: the continuation with the largest sum of log-probabilities, kept among the
`width` best partial texts at every character (Graves 2012; width 1 is greedy argmax).

The most likely text is not a typical one: it repeats itself and has none of the variety that
drawing characters gives, so this is for a model's single best guess, not for samples."""

from __future__ import annotations

import numpy as np


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max()
    return z - np.log(np.exp(z).sum())


def _path(steps: list, i: int) -> list[int]:
    """The character ids of alive hypothesis `i` after len(steps) characters."""
    ids = []
    for parents, tokens in reversed(steps):
        ids.append(int(tokens[i]))
        i = int(parents[i])
    return ids[::-1]


def _best(row: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k largest values of `row`, ties to the lower index (as a stable
    argsort of -row would pick them), in no particular order; all of them when `row` is at
    most 4k long."""
    if len(row) <= 4 * k:  # a few times k: one sort of all is cheaper than picking
        return np.arange(len(row))
    kth = np.partition(row, len(row) - k)[len(row) - k]
    above = np.flatnonzero(row > kth)
    return np.concatenate([above, np.flatnonzero(row == kth)[:k - len(above)]])


def _candidates(score: float, logp: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(char ids, scores) of the `width` best texts one alive text of `score` can grow into:
    no other of its V can be among the `width` best of all, so only these are kept."""
    row = score + logp
    keep = _best(row, width)
    return keep, row[keep]


def search(step, logits: np.ndarray, width: int, length: int, chars,
           stop_at: str | None = None) -> str:
    """The best of the texts of `length` characters (or, with `stop_at`, ending where it first
    appears) that beam search of `width` finds, stop text included. `step` is a stepper
    (sampler.stepper) that has read the prompt and `logits` its last prediction. Scores only
    fall as a text grows (each log-probability is <= 0), so a partial text scoring no better
    than an ended one is dropped: with a width of V**length the search is exhaustive.
    Memory is `width` squared, not `width` times V: each alive text keeps only its own best
    `width` continuations (V is up to 65,536)."""
    V = len(chars)
    scores = np.zeros(1)  # (n,) log-probability sum of each alive text
    states, cands, tails = [step.state()], [_candidates(0.0, _log_softmax(logits), width)], [""]
    steps = []  # per character: (parent, char id) of each alive text, to read the best back
    assert width < 1 << 15  # a parent's index is an int16 (limits.MAX_BEAM)
    best = (-np.inf, None)  # an ended text: (score, (character index, parent, char id))
    for t in range(length):
        flat = np.concatenate([p * V + ids for p, (ids, _) in enumerate(cands)])
        cand = np.concatenate([sc for _, sc in cands])
        pick = np.lexsort((flat, -cand))[:width]  # ties: the lower index, as argmax
        parents, tokens, new_scores, new_states, new_cands, new_tails = [], [], [], [], [], []
        for j, score in zip(flat[pick].tolist(), cand[pick].tolist(), strict=True):
            if score <= best[0]:
                break  # this and every later candidate can only end below the ended text
            p, c = divmod(j, V)
            if stop_at is not None:
                tail = tails[p] + chars[c]
                if stop_at in tail:
                    best = (score, (t, p, c))
                    continue
                new_tails.append(tail[-len(stop_at):])
            step.restore(states[p])
            new_cands.append(_candidates(score, _log_softmax(step(c)), width))
            new_states.append(step.state())
            parents.append(p)
            tokens.append(c)
            new_scores.append(score)
        if not parents:
            break
        scores = np.array(new_scores)
        steps.append((np.array(parents, np.int16), np.array(tokens, np.int32)))  # K * length
        states, cands, tails = new_states, new_cands, new_tails
    if best[1] is not None and (len(steps) < length or best[0] >= scores.max()):
        # ended early, or fully grown texts all score below the ended one
        t, p, c = best[1]
        ids = _path(steps[:t], p) + [c]
    else:
        ids = _path(steps, int(np.argmax(scores)))
    return "".join(chars[i] for i in ids)

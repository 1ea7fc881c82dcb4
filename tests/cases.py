"""Shared test-case generator for the seglosses tests.

make_case(kind, mode, shape, seed, dtype=np.float64) -> (logits, target)

shape is the logits' shape (N, C, *spatial); use C = 1 for mode "binary".
Logits come back with that shape and the given dtype. Targets:
  - binary / multilabel: same shape as the logits, dtype `dtype`, values 0/1
    (255 at ignored elements for kind "ignored", values in [0, 1] for "soft");
  - multiclass: index targets (N, *spatial) np.int64 (255 at ignored pixels
    for "ignored"); for kind "soft", probabilities (N, C, *spatial) of dtype
    `dtype` (softmax of random numbers over the class axis).

Kinds: "random", "saturated", "empty", "full", "ignored", "soft".
"""

import zlib

import numpy as np

KINDS = ("random", "saturated", "empty", "full", "ignored", "soft")
MODES = ("binary", "multiclass", "multilabel")
IGNORE = 255

# Small shapes so that float64 oracle loops stay fast.
_SHAPES = {
    "binary": [(4, 1), (2, 1, 5, 6), (2, 1, 3, 4, 5)],
    "multilabel": [(4, 3), (2, 3, 5, 6), (2, 3, 3, 4, 5)],
    "multiclass": [(4, 3), (2, 3, 5, 6), (2, 3, 3, 4, 5)],
}

# Every kind x mode x (0-D, 2-D, 3-D spatial) shape.
CASES = [
    (kind, mode, shape)
    for mode in MODES
    for shape in _SHAPES[mode]
    for kind in KINDS
]


def _softmax(z, axis=1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def make_case(kind, mode, shape, seed, dtype=np.float64):
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        raise ValueError("shape must be (N, C, *spatial)")
    n, c = shape[0], shape[1]
    spatial = shape[2:]
    if mode == "binary" and c != 1:
        raise ValueError("binary cases use C = 1")
    if mode == "multiclass" and c < 2:
        raise ValueError("multiclass cases need C >= 2")
    rng = np.random.default_rng(seed)

    logits = rng.normal(0.0, 3.0, size=shape)

    if mode == "multiclass":
        pix_shape = (n,) + spatial
        if kind == "soft":
            target = _softmax(rng.normal(0.0, 2.0, size=shape), axis=1).astype(dtype)
            return logits.astype(dtype), target
        if kind == "empty":
            t = np.zeros(pix_shape, dtype=np.int64)
        elif kind == "full":
            t = np.full(pix_shape, c - 1, dtype=np.int64)
        else:
            t = rng.integers(0, c, size=pix_shape).astype(np.int64)
        if kind == "saturated":
            # Every class strongly negative, one predicted class strongly
            # positive; the target agrees with the prediction about half the time.
            mag = rng.choice([1e4, 30.0], size=pix_shape)
            pred = rng.integers(0, c, size=pix_shape)
            agree = rng.random(pix_shape) < 0.5
            t = np.where(agree, pred, (pred + rng.integers(1, c, size=pix_shape)) % c)
            t = t.astype(np.int64)
            onehot = np.moveaxis(np.eye(c)[pred], -1, 1)  # (N, C, *spatial)
            logits = np.where(onehot > 0, 1.0, -1.0) * np.expand_dims(mag, 1)
        if kind == "ignored":
            mask = rng.random(pix_shape) < 0.2
            if not mask.any():
                mask.flat[0] = True
            t = np.where(mask, IGNORE, t).astype(np.int64)
        return logits.astype(dtype), t

    # binary / multilabel: dense targets with the logits' shape
    if kind == "soft":
        target = rng.random(shape)
    elif kind == "empty":
        target = np.zeros(shape)
    elif kind == "full":
        target = np.ones(shape)
    else:
        target = (rng.random(shape) < 0.5).astype(np.float64)
    if kind == "saturated":
        mag = rng.choice([1e4, 30.0], size=shape)
        agree = rng.random(shape) < 0.5
        sign = np.where(target > 0, 1.0, -1.0)
        sign = np.where(agree, sign, -sign)
        logits = sign * mag
    if kind == "ignored":
        mask = rng.random(shape) < 0.2
        if not mask.any():
            mask.flat[0] = True
        target = np.where(mask, float(IGNORE), target)
    return logits.astype(dtype), target.astype(dtype)


def case_seed(kind, mode, shape):
    """A seed fixed by the case (``hash`` of strings changes with every process)."""
    return zlib.crc32(repr((kind, mode, tuple(shape))).encode()) % 1000


def oracle_inputs(kind, mode, shape, opts):
    """The case's logits (probabilities with ``from_logits=False``), target and options (``ignore_index`` added for
    the "ignored" kind), as the oracle sweeps use them."""
    logits, target = make_case(kind, mode, shape, seed=case_seed(kind, mode, shape))
    opts = dict(opts)
    if kind == "ignored":
        opts["ignore_index"] = IGNORE
    if not opts.get("from_logits", True):
        logits = _softmax(logits, axis=1) if mode == "multiclass" else np.exp(-np.logaddexp(0.0, -logits))
    return logits, target, opts

"""Pixel weights for the float64 oracles of the spatial losses (boundary, contour, topology, structure), written from
the shared definition (docs/semantics.md, "Pixel weights"), not from seglosses' code.

A map has the target's spatial shape ``(N, *spatial)`` (one weight for every class of a pixel) or the logits' shape
(one weight per element), each axis the full size or 1 (NumPy broadcasting). Ignored elements get weight 0: a NaN
or inf there is replaced, never multiplied.
"""

import numpy as np
import oracle


#: The weight of every element ``(N, C, S)`` float64 of the prepared inputs ``r`` (tests/oracle.py ``_prepare``), 0 at
#: ignored elements; None: all 1 at valid elements. One rule for every oracle: tests/oracle.py's.
element_weights = oracle._pixel_weight


def pixel_weights(r, pixel_weight):
    """The weight of every pixel ``(N, S)`` for a loss with one value per softmax pixel (a per-class map is not
    accepted there), 0 at ignored pixels; None: all 1 at valid pixels."""
    if pixel_weight is not None:
        w = np.asarray(pixel_weight, dtype=np.float64)
        if w.ndim == len(r.out_shape) and w.shape[1] != 1:
            raise ValueError("a per-pixel loss takes one weight per pixel")
    return element_weights(r, pixel_weight)[:, 0, :]

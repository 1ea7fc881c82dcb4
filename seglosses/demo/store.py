"""Files the demo writes: checkpoints and results, replaced atomically."""

from __future__ import annotations

import json
import os


def atomic_save(obj, path: str, *, as_json: bool = False) -> None:
    """Write to a temporary file in the same folder, then rename: a reader (or a rerun after a kill) sees either the
    old file or the new one, never half of one."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        if as_json:
            with open(tmp, "w") as f:
                json.dump(obj, f, indent=1, allow_nan=True)
        else:
            import torch

            torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

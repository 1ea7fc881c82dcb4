"""Hand-written C kernels for the CPU (``kernels.c``), built once per machine with the system's C compiler.

The region statistics of a softmax with class-index targets (the multiclass Dice, Jaccard, Tversky, focal-Tversky
and generalized Dice losses) are bound by the softmax's exponentials, not by memory: Inductor's loops for them
compute each exponential two or three times (a pass for the per-pixel sum over classes, another for the per-class
sums over pixels, the backward pass again), the blocked torch passes keep the probabilities and run an ATen kernel
per step. The C kernel computes the softmax of a block of pixels once, keeps it in cache and takes every sum from
it; its backward pass does the same with the gradient (figures: docs/benchmarks.md, "Design measurements").

Lovasz-softmax with class indices: one kernel turns every error into a packed sort key (``key << 32 | position``,
the order of :func:`seglosses.kernels.lovasz._sort_keys_cpu`), NumPy sorts them, and a second kernel walks the sorted keys
once for every row's loss and its derivative (in place of torch's gather, cumsum, scatter chain).

The kernels run by the policy of :func:`seglosses.set_cpu_kernels` (:func:`seglosses.kernels.dispatch.select` says
which inputs they take): never with ``"eager"``; with ``"auto"`` and ``"inductor"``, for every call they apply to,
built at the first one (they take any shape: the build is per machine, not per shape). The shared library is cached under ``$SEGLOSSES_CACHE_DIR`` (default ``~/.cache/seglosses``), keyed
by the source, the flags, the compiler and the CPU; a build takes about a second. Without a working C compiler, one
RuntimeWarning, and the other paths run.

``SEGLOSSES_NATIVE_LIB=/path/to/lib.so`` loads that shared library instead of building (no compiler needed): a build
of this same ``kernels.c`` with other flags, such as the AddressSanitizer build of ``benchmarks/asan_native.sh``.
Nothing checks that it was built from this source beyond the exported names.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import torch

from seglosses.kernels import policy

SOURCE = Path(__file__).with_name("kernels.c")
# Read once, with the module: the library built later (or found in the cache under this text's hash) is then always
# the one this module's signatures describe, even if the package is upgraded while a process runs.
try:
    _SOURCE_BYTES = SOURCE.read_bytes()
except OSError as e:  # a copy of the package without its .c file: the other paths run (one warning, at first use)
    _SOURCE_BYTES, _SOURCE_ERROR = None, e
else:
    _SOURCE_ERROR = None
#: Target dtypes the kernels read as they are (others take the other paths).
TARGET_TYPES = {torch.int64: "int64_t", torch.int32: "int32_t", torch.int16: "int16_t", torch.int8: "int8_t",
                torch.uint8: "uint8_t"}
#: Compiler flags, best first: vectorized for this CPU and threaded with OpenMP, down to portable and serial.
#: (-fno-trapping-math lets the compiler vectorize the kernels' selects; they never read errno or FP flags.)
FLAG_SETS = tuple(["-O3", *f, "-fno-math-errno", "-fno-trapping-math"] for f in (
    ["-march=native", "-fopenmp"],
    ["-fopenmp"],
    ["-march=native", "-fopenmp-simd"],
    [],
))

_lock = threading.Lock()
_state = {"lib": None, "error": None, "calls": 0}


def _forget_failure() -> None:
    _state["error"] = None


policy.on_retry(_forget_failure)


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_id() -> str:
    """What -march=native depends on: the CPU's model and feature flags (a cache shared by machines stays right;
    without /proc/cpuinfo, the host's name too)."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f.read().splitlines() if ln.startswith(("model name", "flags", "Features"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return " ".join([platform.processor(), platform.machine(), platform.node()])


def cache_dir() -> Path:
    d = os.environ.get("SEGLOSSES_CACHE_DIR")
    if d:
        return Path(d)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "seglosses"


def _build(cc: str) -> Path:
    if _SOURCE_BYTES is None:
        raise RuntimeError(f"the kernels' source is missing ({_SOURCE_ERROR})")
    src = _SOURCE_BYTES
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(b"\0".join([src, version.encode(), repr(FLAG_SETS).encode(), _cpu_id().encode(),
                                      sys.platform.encode()])).hexdigest()
    out_dir = cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"native-{key[:24]}.so"
    if out.exists():
        return out
    errors = []
    with tempfile.TemporaryDirectory() as work:
        c_file = Path(work) / "kernels.c"
        c_file.write_bytes(src)
        for flags in FLAG_SETS:
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
            os.close(fd)
            try:
                cmd = [cc, *flags, "-shared", "-fPIC", str(c_file), "-o", tmp, "-lm"]
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
                if r.returncode == 0:
                    _load(Path(tmp))  # a library that builds but does not load (say, no OpenMP runtime): next flags
                    os.replace(tmp, out)  # atomic: processes building at once each write their own file
                    return out
                errors.append(f"{' '.join(flags)}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
            except (OSError, AttributeError, subprocess.SubprocessError) as e:
                errors.append(f"{' '.join(flags)}: {type(e).__name__}: {e}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    raise RuntimeError("the C compiler failed: " + "; ".join(errors))


def _load(path: Path):
    lib = ctypes.CDLL(str(path))
    vp, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    region = [vp, vp, i64, i64, i64, i64, cint, vp, vp, vp, vp, i64, cint]  # the sums' and the gradient's signatures
    signatures = {f"segl_softmax_index_{kind}_{name}": region
                  for name in TARGET_TYPES.values() for kind in ("sums", "grad")}
    signatures["segl_lovasz_index_keys"] = [vp, vp, vp, i64, i64, i64, vp, i64, cint, vp, vp, cint]
    signatures["segl_lovasz_index_scan"] = [vp, vp, i64, i64, vp, i64, cint, vp, vp, vp, cint]
    for name, argtypes in signatures.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = argtypes, cint
    return lib


def library():
    """The loaded kernels, built on first use; None (after one RuntimeWarning) where they cannot be built."""
    if _state["lib"] is not None or _state["error"] is not None:
        return _state["lib"]
    with _lock:
        if _state["lib"] is None and _state["error"] is None:
            try:
                given = os.environ.get("SEGLOSSES_NATIVE_LIB")
                cc = None if given else _compiler()
                if not given and cc is None:
                    raise RuntimeError("no C compiler found (set CC)")
                _state["lib"] = _load(Path(given) if given else _build(cc))
            except Exception as e:  # noqa: BLE001 - any failure: the other paths run
                _state["error"] = e
                warnings.warn(f"seglosses: building the C kernels failed ({type(e).__name__}: {e}); the other CPU "
                              "paths run from now on. seglosses.set_cpu_kernels('eager') silences this.",
                              RuntimeWarning, stacklevel=4)
    return _state["lib"]


def _ignore(ignore_index):
    return (0, 0) if ignore_index is None else (int(ignore_index), 1)


def _check(code: int, c: int = 0, ignore_index=None) -> None:
    if code == 1:
        raise MemoryError("seglosses: the C kernel could not allocate its per-thread buffers")
    if code == 2:  # as the eager passes, which fail to index with them
        raise IndexError(f"`target` has class indices outside [0, {c}) that are not ignore_index ({ignore_index}); "
                         "seglosses.validate(logits, target, mode) reports them")


def _weight(weight):
    """(pointer, classes) of a pixel weight: (None, 0) without; a contiguous float32 (N, 1 or C, S) tensor (what
    :func:`seglosses.kernels.dispatch.select` lets through) otherwise."""
    return (None, 0) if weight is None else (weight.data_ptr(), weight.shape[1])


def softmax_index_sums(x, target, ignore_index, weight=None):
    """``(P, T, G)``, each (N, C) float32, of the softmax of ``x`` (N, C, S) and class indices ``target`` (N, S);
    ``weight``: None or a contiguous float32 pixel weight (N, 1 or C, S) multiplying every term."""
    lib = library()
    n, c, s = x.shape
    out = torch.empty((3, n, c), dtype=torch.float32)
    ign, has = _ignore(ignore_index)
    fn = getattr(lib, f"segl_softmax_index_sums_{TARGET_TYPES[target.dtype]}")
    _check(fn(x.data_ptr(), target.data_ptr(), n, c, s, ign, has, out[0].data_ptr(), out[1].data_ptr(),
              out[2].data_ptr(), *_weight(weight), torch.get_num_threads()), c, ignore_index)
    _state["calls"] += 1
    return out.unbind(0)


def softmax_index_grad(x, target, ignore_index, a, m, weight=None):
    """The gradient (N, C, S) for ``dL/dP = a`` and ``dL/dT = m`` (both (N, C)), with the pixel weight ``weight``
    (as :func:`softmax_index_sums`)."""
    lib = library()
    n, c, s = x.shape
    a = a.to(torch.float32).contiguous()
    m = m.to(torch.float32).contiguous()
    grad = torch.empty_like(x, memory_format=torch.contiguous_format)
    ign, has = _ignore(ignore_index)
    fn = getattr(lib, f"segl_softmax_index_grad_{TARGET_TYPES[target.dtype]}")
    _check(fn(x.data_ptr(), target.data_ptr(), n, c, s, ign, has, a.data_ptr(), m.data_ptr(), grad.data_ptr(),
              *_weight(weight), torch.get_num_threads()), c, ignore_index)
    _state["calls"] += 1
    return grad


def lovasz_index_rows(q, label, valid, cols, per_image, sort_rows):
    """Lovasz-softmax rows with class indices: losses (R, K), foreground counts (R, K) and the loss's derivative in
    q for a unit upstream gradient (N, K, S); ``valid``: (N, S) bool or None; ``sort_rows`` sorts an (rows, L) int64
    tensor's rows in place as unsigned integers. See ``segl_lovasz_index_keys`` in kernels.c."""
    lib = library()
    n, c, s = q.shape
    k = len(cols)
    r, length = (n, s) if per_image else (1, n * s)
    keys = torch.empty((r * k, length), dtype=torch.int64)
    count = torch.empty((r, k), dtype=torch.int64)
    losses = torch.empty((r, k), dtype=torch.float32)
    unit = torch.empty((n, k, s), dtype=torch.float32)
    col = torch.tensor(list(cols), dtype=torch.int64)
    threads = torch.get_num_threads()
    valid = None if valid is None else valid.to(torch.bool).contiguous()  # (kept alive through the call)
    code = lib.segl_lovasz_index_keys(q.data_ptr(), label.data_ptr(), None if valid is None else valid.data_ptr(), n,
                                      c, s, col.data_ptr(), k, int(per_image), keys.data_ptr(), count.data_ptr(),
                                      threads)
    if code == 2:  # (the classes are checked by the front end: a defence, nothing was read or written)
        raise IndexError(f"seglosses: Lovasz classes {list(cols)} outside [0, {c})")
    sort_rows(keys)
    if lib.segl_lovasz_index_scan(keys.data_ptr(), label.data_ptr(), n, s, col.data_ptr(), k, int(per_image),
                                  count.data_ptr(), losses.data_ptr(), unit.data_ptr(), threads):
        raise RuntimeError("seglosses: the sorted Lovasz keys hold positions outside their rows")
    _state["calls"] += 1
    return losses, count.to(torch.float32), unit

"""The demo's data: a deterministic synthetic, strongly imbalanced segmentation set, a folder loader and a split.

:func:`synthetic` draws textured, noisy grayscale images holding a few small objects of three rare foreground
classes (filled blobs, hollow rings, thin cracks; about 2% of the pixels in all). It uses only torch's random
generator (uniform draws only), single IEEE operations per element (``+ - * /``, ``sqrt``, ``floor``, comparisons,
copies) and an integer max-scatter: no floating-point reductions, no transcendental functions and no convolution,
whose results may depend on the thread count or on the CPU's vector width, so the same ``(n, size, seed)`` gives
bitwise the same tensors on any machine and thread count.

:func:`load_folder` reads ``images/`` and ``masks/`` paired by file stem; :func:`split` makes a seeded
train/validation split of them.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

CLASS_NAMES = ("background", "blob", "ring", "crack")

# Objects per image and class, drawn uniformly from [1, max]. Sizes are for size=64 and scale with size / 64.
_MAX_OBJECTS = (2, 2, 2)       # blob, ring, crack
_BLOB_AXES = (1.8, 3.6)        # semi-axes of the filled ellipses
_RING_RADIUS = (2.5, 5.0)      # radius of the circle / half side of the square outlines
_CRACK_LENGTH = (4.0, 9.0)     # length of each of the two segments of a crack
_CONTRAST = ((0.8, 2.4, 0.5), (1.0, 2.8, 0.5), (1.4, 3.4, 0.75))  # |contrast| range and P(dark), per class
_SQRT3 = 1.7320508075688772
_BG_STD = 0.78                 # std of the images before the per-image gain (measured over 4096 images)


def _uniform(gen: torch.Generator, shape, low: float, high: float) -> torch.Tensor:
    return torch.rand(shape, generator=gen) * (high - low) + low


def _unit_vectors(gen: torch.Generator, shape) -> tuple[torch.Tensor, torch.Tensor]:
    """Random directions ``(cos, sin)`` without trigonometric functions: normalised points of a square."""
    v = _uniform(gen, (2, *shape), -1.0, 1.0)
    v = v + torch.where(v >= 0, 1e-3, -1e-3)
    norm = torch.sqrt(v[0] * v[0] + v[1] * v[1])
    return v[0] / norm, v[1] / norm


def _wave(u: torch.Tensor) -> torch.Tensor:
    """A sine-like wave of period 1 in [-1, 1] made of two parabolas (C1), with no transcendental function."""
    t = u - torch.floor(u)
    upper = t < 0.5
    t = torch.where(upper, t, t - 0.5)
    y = t * (0.5 - t) * 16
    return torch.where(upper, y, -y)


def _binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """Blur ``(n, H, W)`` with the 3x3 binomial kernel [1, 2, 1]^T [1, 2, 1] / 16 (a Gaussian of sigma 1/sqrt(2)),
    replicated borders, as a fixed sequence of shifted sums."""
    h, w = x.shape[-2:]
    p = F.pad(x.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    p = p[:, :, :-1] + p[:, :, 1:]
    p = p[:, :, :-1] + p[:, :, 1:]
    p = p[:, :-1] + p[:, 1:]
    return (p[:, :-1] + p[:, 1:]) * (1 / 16)


def _background(gen: torch.Generator, n: int, size: int, s: float) -> torch.Tensor:
    """Smooth random clouds, an oriented low-frequency wave and an illumination gradient, all drawn per image."""
    coords = torch.arange(size, dtype=torch.float32)
    # clouds: smoothed noise on a coarse grid of cell f, linearly interpolated (first along x, then along y)
    f = max(2, round(6 * s))
    cells = size // f + 3
    coarse = _uniform(gen, (n, cells + 2, cells + 2), -_SQRT3, _SQRT3)
    coarse = (coarse[:, :, :-2] + coarse[:, :, 1:-1] * 2 + coarse[:, :, 2:])
    coarse = (coarse[:, :-2] + coarse[:, 1:-1] * 2 + coarse[:, 2:]) * _uniform(gen, (n, 1, 1), 0.05, 0.16)
    offset = torch.randint(0, f, (2,), generator=gen).tolist()
    t = (coords + offset[1]) / f
    i = t.floor().long()
    t = t - i
    rows = coarse[:, :, i] * (1 - t) + coarse[:, :, i + 1] * t
    t = ((coords + offset[0]) / f)[:, None]
    i = t.floor().long()
    t = t - i
    clouds = rows[:, i[:, 0]] * (1 - t) + rows[:, i[:, 0] + 1] * t
    # texture: sin(a(x) + b(y)) = sin a cos b + cos a sin b with a sine-like wave, period 12..40 px (at size 64)
    c, sn = _unit_vectors(gen, (n, 1, 1))
    freq = 1.0 / (_uniform(gen, (n, 1, 1), 12.0, 40.0) * s)
    amp = _uniform(gen, (n, 1, 1), 0.0, 0.6)
    a = coords[None, None, :] * (c * freq) + torch.rand((n, 1, 1), generator=gen)
    b = coords[None, :, None] * (sn * freq)
    texture = (_wave(a) * amp) * _wave(b + 0.25) + (_wave(a + 0.25) * amp) * _wave(b)
    # illumination gradient
    gc, gs = _unit_vectors(gen, (n, 1, 1))
    slope = _uniform(gen, (n, 1, 1), 0.0, 0.8)
    centred = coords * (2.0 / (size - 1)) - 1.0
    gradient = centred[None, None, :] * (gc * slope) + centred[None, :, None] * (gs * slope)
    return clouds + texture + gradient


def _window(gen, n, k, size, reach):
    """Centres of ``(n, k)`` objects that extend at most ``reach`` px, and the pixel grid of a square window around
    each: returns local ``dy (n, k, w, 1)``, ``dx (n, k, 1, w)`` from the centre and flat canvas indices."""
    r = math.ceil(reach) + 1
    w = 2 * r + 1
    cy = _uniform(gen, (n, k), r, size - 1 - r)
    cx = _uniform(gen, (n, k), r, size - 1 - r)
    oy = cy.floor().long() - r
    ox = cx.floor().long() - r
    steps = torch.arange(w)
    dy = (oy[..., None] + steps).float()[..., :, None] - cy[..., None, None]
    dx = (ox[..., None] + steps).float()[..., None, :] - cx[..., None, None]
    base = torch.arange(n)[:, None] * (size * size) + oy * size + ox
    flat = base[..., None, None] + steps[:, None] * size + steps[None, :]
    return dy, dx, flat


def _blobs(gen, n, k, size, s):
    """Filled, rotated ellipses."""
    hi = max(_BLOB_AXES[1] * s, 1.0)
    a = (_uniform(gen, (n, k, 1, 1), *_BLOB_AXES) * s).clamp_min(1.0)
    b = (a * _uniform(gen, (n, k, 1, 1), 0.55, 1.0)).clamp_min(1.0)
    uc, us = _unit_vectors(gen, (n, k, 1, 1))
    dy, dx, flat = _window(gen, n, k, size, hi)
    p = dx * uc + dy * us
    q = dy * uc - dx * us
    return (p * p) / (a * a) + (q * q) / (b * b) <= 1.0, flat


def _rings(gen, n, k, size, s):
    """One-pixel outlines of circles and rotated squares."""
    half = max(0.5, 0.5 * s)
    hi = max(_RING_RADIUS[1] * s, 2.0)
    r = (_uniform(gen, (n, k, 1, 1), *_RING_RADIUS) * s).clamp_min(2.0)
    uc, us = _unit_vectors(gen, (n, k, 1, 1))
    square = torch.rand((n, k, 1, 1), generator=gen) < 0.4
    dy, dx, flat = _window(gen, n, k, size, hi * 1.4143 + half)
    circle = (torch.sqrt(dx * dx + dy * dy) - r).abs() <= half
    box = (torch.maximum((dx * uc + dy * us).abs(), (dy * uc - dx * us).abs()) - r).abs() <= half
    return torch.where(square, box, circle), flat


def _segment(dx, dy, ax, ay, vx, vy):
    """Pixels whose centre lies within 0.5 px of the segment from (ax, ay) along (vx, vy)."""
    ex, ey = dx - ax, dy - ay
    t = ((ex * vx + ey * vy) / (vx * vx + vy * vy)).clamp(0.0, 1.0)
    ex = ex - t * vx
    ey = ey - t * vy
    return ex * ex + ey * ey <= 0.25


def _cracks(gen, n, k, size, s):
    """One-pixel-wide polylines of two segments meeting at the centre."""
    hi = max(_CRACK_LENGTH[1] * s, 2.0)
    l1 = (_uniform(gen, (n, k, 1, 1), *_CRACK_LENGTH) * s).clamp_min(2.0)
    l2 = (_uniform(gen, (n, k, 1, 1), *_CRACK_LENGTH) * s).clamp_min(2.0)
    c1, s1 = _unit_vectors(gen, (n, k, 1, 1))
    # the second segment turns by up to 40 degrees: rotate (c1, s1) by the direction (1, tan) / |(1, tan)|
    tan = _uniform(gen, (n, k, 1, 1), -0.85, 0.85)
    inv = 1.0 / torch.sqrt(tan * tan + 1.0)
    c2 = (c1 - s1 * tan) * inv
    s2 = (s1 + c1 * tan) * inv
    dy, dx, flat = _window(gen, n, k, size, hi + 0.5)
    first = _segment(dx, dy, -c1 * l1, -s1 * l1, c1 * l1, s1 * l1)
    second = _segment(dx, dy, 0.0, 0.0, c2 * l2, s2 * l2)
    return first | second, flat


def synthetic(n: int, *, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic synthetic segmentation set with three rare foreground classes.

    Each grayscale image has a textured background (smooth random clouds, an oriented low-frequency wave, an
    illumination gradient; all varying per image) and, at random positions, 1-2 "blob" objects (filled ellipses,
    semi-axes 1.8-3.6 px at ``size=64``), 1-2 "ring" objects (one-pixel outlines of circles or rotated squares,
    radius 2.5-5 px) and 1-2 "crack" objects (one-pixel-wide polylines of two segments of 4-9 px). Object sizes scale
    with ``size / 64``; lines stay one pixel wide. Each object differs from the background by its own contrast
    (bright or dark, sometimes faint; cracks mostly dark); fine grain is added, the image is blurred (the binomial
    [1, 2, 1] kernel, a Gaussian of sigma 0.71 px), noised, and scaled and shifted by a random per-image gain and
    offset, so that the set is roughly zero-mean and unit-variance. Where objects overlap, the later class (crack
    over ring over blob) labels the pixel. The foreground covers about 2.1% of the pixels at ``size=64`` (blob 0.65%,
    ring 0.93%, crack 0.51%), with every class in every image.

    Generation is vectorised over images (512 images of 64x64 take about 0.1-0.2 s on one CPU core) and bitwise
    reproducible on any machine and thread count (see the module's docstring).

    Args:
        n: number of images (>= 0).
        size: height and width in pixels (>= 16).
        seed: seed of the random generator; another seed gives another set (e.g. for validation).

    Returns:
        ``(images, masks)``: float32 images ``(n, 1, size, size)`` and int64 masks ``(n, size, size)`` with labels
        0..3 indexing :data:`CLASS_NAMES`.

    Example:
        >>> from seglosses.demo.data import synthetic, CLASS_NAMES
        >>> images, masks = synthetic(8, size=32, seed=1)
        >>> images.shape, images.dtype, masks.shape, masks.dtype
        (torch.Size([8, 1, 32, 32]), torch.float32, torch.Size([8, 32, 32]), torch.int64)
        >>> sorted(masks.unique().tolist()) == list(range(len(CLASS_NAMES)))
        True
        >>> bool((synthetic(8, size=32, seed=1)[0] == images).all())
        True
    """
    for name, value in (("n", n), ("size", size), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"`{name}` must be an int; got {type(value).__name__}")
    if n < 0:
        raise ValueError(f"`n` must be >= 0; got {n}")
    if size < 16:
        raise ValueError(f"`size` must be >= 16; got {size}")
    # One intra-op thread: the result is the same for any thread count, and the many small, memory-bound steps run
    # as fast on one thread as on two, but much faster when another process is busy on the other core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _synthetic(n, size, seed)
    finally:
        torch.set_num_threads(threads)


def _synthetic(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    s = size / 64
    image = _background(gen, n, size, s)
    # Objects: each is drawn in a small window around its centre; the windows are painted onto a canvas of
    # object ids (0 = none) by a max-scatter, so the object with the highest id (cracks over rings over blobs)
    # owns a pixel. Ids index the tables of labels and contrasts.
    ids, flats, labels, contrasts = [], [], [torch.zeros(1, dtype=torch.int64)], [torch.zeros(1)]
    first = 1
    for label, (draw, k, (low, high, p_dark)) in enumerate(zip((_blobs, _rings, _cracks), _MAX_OBJECTS, _CONTRAST),
                                                           start=1):
        inside, flat = draw(gen, n, k, size, s)
        used = torch.arange(k) < torch.randint(1, k + 1, (n, 1), generator=gen)
        mag = _uniform(gen, (n, k), low, high)
        contrasts.append(torch.where(torch.rand((n, k), generator=gen) < p_dark, -mag, mag).flatten())
        labels.append(torch.full((n * k,), label))
        obj = (torch.arange(n * k).view(n, k) + first) * used
        ids.append(torch.where(inside, obj[..., None, None], 0).flatten())
        flats.append(flat.flatten())
        first += n * k
    canvas = torch.zeros(n * size * size, dtype=torch.int64)
    canvas.scatter_reduce_(0, torch.cat(flats), torch.cat(ids), "amax")
    canvas = canvas.view(n, size, size)
    mask = torch.cat(labels)[canvas]
    image = image + torch.cat(contrasts)[canvas]
    # fine grain, optics blur, sensor noise, per-image gain and offset
    grain = _uniform(gen, (n, 1, 1), 0.0, 0.4)
    image = image + _uniform(gen, (n, size, size), -_SQRT3, _SQRT3) * grain
    image = _binomial_blur(image)
    noise = _uniform(gen, (n, 1, 1), 0.1, 0.4)
    image = image + _uniform(gen, (n, size, size), -1.0, 1.0) * noise
    gain = _uniform(gen, (n, 1, 1), 0.7, 1.3) / _BG_STD
    offset = _uniform(gen, (n, 1, 1), -0.4, 0.4)
    return (image * gain + offset).unsqueeze(1), mask


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_GRAY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def _list(folder, suffixes: tuple[str, ...]) -> dict[str, str]:
    """``{stem: file name}`` of the files in ``folder`` with one of ``suffixes`` (any case); duplicate stems raise."""
    found: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        stem, suffix = os.path.splitext(name)
        if name.startswith(".") or suffix.lower() not in suffixes or not os.path.isfile(os.path.join(folder, name)):
            continue
        if stem in found:
            raise ValueError(f"{folder} holds two files with the stem {stem!r}: {found[stem]} and {name}; "
                             f"expected one file per stem")
        found[stem] = name
    return found


def _stems(stems: list[str]) -> str:
    return ", ".join(stems[:5]) + (f" and {len(stems) - 5} more" if len(stems) > 5 else "")


def _read(image_module, file: str, convert):
    """``convert(image)`` of the image file, with errors that name the file."""
    try:
        im = image_module.open(file)
    except (OSError, ValueError) as err:  # PIL.UnidentifiedImageError is an OSError
        raise ValueError(f"cannot read {file}: {err}") from err
    with im:
        try:
            im.load()
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read {file}: {err}") from err
        return convert(im, file)


def _image_array(im, file: str):
    """``(H, W, ch)`` float32 array in [0, 1] (ch 1 or 3) of an image."""
    import numpy as np

    mode = im.mode
    palette = mode in ("P", "PA")
    try:
        if palette:
            im, mode = im.convert("RGB"), "RGB"  # alpha dropped
        elif mode in ("1", "LA"):
            im, mode = im.convert("L"), "L"
        elif mode not in _GRAY_MODES and mode != "RGB":
            im, mode = im.convert("RGB"), "RGB"  # RGBA (alpha dropped), CMYK, YCbCr, LAB, HSV
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot convert {file} (mode {im.mode!r}) to grayscale or RGB: {err}") from err
    a = np.asarray(im)
    if palette and (a[..., :1] == a).all():
        a = a[..., :1]  # a grayscale palette
    if mode.startswith("I;16"):
        a = a.astype(np.float32) / 65535
    elif mode == "I":
        a = a.astype(np.float32) / (65535 if a.max() <= 65535 else float(a.max()))  # 16-bit PNGs may open as "I"
    elif mode == "F":
        a = a.astype(np.float32)
    else:
        a = a.astype(np.float32) / 255
    return a.reshape(*a.shape[:2], -1)


def _mask_array(im, file: str):
    """``(H, W)`` int64 array of the labels of a mask."""
    import numpy as np

    if im.mode not in ("L", "P", "I", "1") and not im.mode.startswith("I;16"):
        raise ValueError(f"mask {file} has mode {im.mode!r}; expected a single-channel image of class indices "
                         f"(mode 'L', 'P' or 'I'): save each pixel's class index (0, 1, 2, ...), not a colour")
    return np.asarray(im).astype(np.int64)


def load_folder(path, *, num_classes: int | None = None,
                ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Read a segmentation set from ``path/images/`` and ``path/masks/``, paired by file stem.

    ``images/abc.png`` goes with ``masks/abc.png``. Images may be .png, .jpg, .jpeg, .tif, .tiff or .bmp, grayscale
    or colour (palette images become RGB, the alpha channel is dropped; if the set mixes grayscale and colour, the
    grayscale images are repeated over three channels); 8-bit and 16-bit values are scaled to [0, 1], then each
    channel is standardised with the mean and standard deviation over the whole set. All images must have the same
    size; nothing is resized. Masks must be single-channel .png files of class indices (mode "L", "I" or the
    indices of a palette image, "P"); the pixels equal to ``ignore_index`` are kept as they are. Files are sorted
    by stem. Class names come from ``path/classes.txt`` (one name per line) if it exists.

    Args:
        path: the folder holding ``images/``, ``masks/`` and optionally ``classes.txt``.
        num_classes: number of classes C; every label must be in [0, C) or equal ``ignore_index``. None: the
            number of lines of ``classes.txt`` if it exists, else the largest label (other than ``ignore_index``)
            plus one, and at least 2.
        ignore_index: the label of pixels to ignore (kept in the masks).

    Returns:
        ``(images, masks, class_names)``: float32 images ``(N, ch, H, W)`` with ch 1 or 3, int64 masks
        ``(N, H, W)``, and C names (``"class 0"``, ``"class 1"``, ... without ``classes.txt``).

    Raises:
        ImportError: Pillow is not installed.
        ValueError: a missing folder, no images, an image without a mask or a mask without an image, unreadable
            files, sizes that differ, an RGB mask, a label out of range or a ``classes.txt`` whose number of lines
            is not C. The message names the file.

    Example:
        >>> import tempfile, numpy as np, pathlib
        >>> from PIL import Image
        >>> from seglosses.demo.data import load_folder
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "masks").mkdir()
        >>> for i in range(3):
        ...     Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / "images" / f"{i}.png")
        ...     Image.fromarray(np.eye(8, dtype=np.uint8) * 2).save(root / "masks" / f"{i}.png")
        >>> images, masks, names = load_folder(root)
        >>> images.shape, masks.shape, names
        (torch.Size([3, 1, 8, 8]), torch.Size([3, 8, 8]), ('class 0', 'class 1', 'class 2'))
    """
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)):
        raise TypeError(f"`num_classes` must be an int or None; got {type(num_classes).__name__}")
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"`num_classes` must be >= 2; got {num_classes}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"`ignore_index` must be an int; got {type(ignore_index).__name__}")
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"`path` must be a str or os.PathLike; got {type(path).__name__}") from None
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError("seglosses.demo.data.load_folder needs Pillow: pip install seglosses[demo]") from err
    import numpy as np

    if not os.path.isdir(path):
        raise ValueError(f"`path` {path} is not an existing folder; expected a folder with images/ and masks/")
    folders = {}
    for sub in ("images", "masks"):
        folders[sub] = os.path.join(path, sub)
        if not os.path.isdir(folders[sub]):
            raise ValueError(f"{path} has no {sub}/ subfolder; expected images/ and masks/ paired by file stem")
    images = _list(folders["images"], IMAGE_SUFFIXES)
    masks = _list(folders["masks"], (".png",))
    if not images:
        raise ValueError(f"{folders['images']} holds no images; expected files ending in {', '.join(IMAGE_SUFFIXES)}")
    lonely = sorted(set(images) - set(masks))
    if lonely:
        other = _list(folders["masks"], IMAGE_SUFFIXES)
        hint = "; masks must be .png files" if any(stem in other for stem in lonely) else ""
        raise ValueError(f"{len(lonely)} image(s) in {folders['images']} have no mask masks/<stem>.png: "
                         f"{_stems(lonely)}{hint}")
    lonely = sorted(set(masks) - set(images))
    if lonely:
        raise ValueError(f"{len(lonely)} mask(s) in {folders['masks']} have no image images/<stem>.<ext>: "
                         f"{_stems(lonely)}")

    stems = sorted(images)
    xs, ys = [], []
    for stem in stems:
        image_file = os.path.join(folders["images"], images[stem])
        mask_file = os.path.join(folders["masks"], masks[stem])
        x = _read(Image, image_file, _image_array)
        y = _read(Image, mask_file, _mask_array)
        if x.shape[:2] != y.shape:
            raise ValueError(f"image {image_file} has size (H, W) = {x.shape[:2]} but its mask {mask_file} has "
                             f"{y.shape}; expected the same size")
        if xs and x.shape[:2] != xs[0].shape[:2]:
            raise ValueError(f"image {image_file} has size (H, W) = {x.shape[:2]} but "
                             f"{os.path.join(folders['images'], images[stems[0]])} has {xs[0].shape[:2]}; all images "
                             f"must have the same size (resize them beforehand)")
        xs.append(x)
        ys.append(y)

    names_file = os.path.join(path, "classes.txt")
    names = None
    if os.path.isfile(names_file):
        with open(names_file, encoding="utf-8") as fh:
            names = tuple(line.strip() for line in fh.read().splitlines() if line.strip())
        if num_classes is not None and len(names) != num_classes:
            raise ValueError(f"{names_file} lists {len(names)} class names but num_classes={num_classes}; "
                             f"expected one name per line for each class")
        if len(names) < 2:
            raise ValueError(f"{names_file} lists {len(names)} class name(s); expected one per line, at least 2")
        num_classes = len(names)
    largest = -1
    for stem, y in zip(stems, ys):
        labels = np.unique(y)
        labels = labels[labels != ignore_index]
        if labels.size == 0:
            continue
        bad = labels[(labels < 0) | (labels >= (num_classes if num_classes is not None else np.inf))]
        if bad.size:
            allowed = f"[0, {num_classes})" if num_classes is not None else "[0, inf)"
            raise ValueError(f"mask {os.path.join(folders['masks'], masks[stem])} holds label {int(bad[0])}; "
                             f"expected labels in {allowed} or ignore_index={ignore_index}")
        largest = max(largest, int(labels[-1]))
    if num_classes is None:
        num_classes = max(2, largest + 1)

    channels = max(x.shape[2] for x in xs)
    x = torch.from_numpy(np.stack([np.broadcast_to(x, (*x.shape[:2], channels)) for x in xs]))
    x = x.permute(0, 3, 1, 2).contiguous()
    # per-channel mean and std over the set, accumulated image by image in float64 (no float64 copy of the set)
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = sum(xi.to(torch.float64).sum(dim=(1, 2)) for xi in x) / count
    var = sum(((xi.to(torch.float64) - mean[:, None, None]) ** 2).sum(dim=(1, 2)) for xi in x) / count
    std = var.sqrt()
    std = torch.where(std > 0, std, 1.0)
    x = (x - mean.to(torch.float32)[:, None, None]) / std.to(torch.float32)[:, None, None]
    y = torch.from_numpy(np.stack(ys))
    return x, y, names if names is not None else tuple(f"class {i}" for i in range(num_classes))


def split(images: torch.Tensor, masks: torch.Tensor, *, val_fraction: float = 0.2,
          seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Split a set into training and validation parts at random, reproducibly.

    ``round(N * val_fraction)`` samples (at least 1, at most N - 1) go to validation, chosen by a permutation
    drawn from ``torch.Generator(seed)``; each part keeps the original order of its samples.

    Args:
        images: ``(N, ...)`` tensor.
        masks: ``(N, ...)`` tensor, the targets of ``images``.
        val_fraction: fraction of the samples to hold out, in (0, 1).
        seed: seed of the permutation.

    Returns:
        ``((train_images, train_masks), (val_images, val_masks))``.

    Example:
        >>> import torch
        >>> from seglosses.demo.data import split
        >>> (tx, ty), (vx, vy) = split(torch.arange(10.0), torch.arange(10), val_fraction=0.3, seed=0)
        >>> len(tx), len(vx), sorted(tx.tolist() + vx.tolist()) == list(range(10))
        (7, 3, True)
    """
    for name, value in (("images", images), ("masks", masks)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor; got {type(value).__name__}")
        if value.dim() == 0:
            raise ValueError(f"`{name}` must have a leading sample dimension (N, ...); got a 0-d tensor")
    if images.shape[0] != masks.shape[0]:
        raise ValueError(f"`images` and `masks` must hold the same number of samples; got {images.shape[0]} "
                         f"and {masks.shape[0]}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise TypeError(f"`val_fraction` must be a float; got {type(val_fraction).__name__}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"`val_fraction` must be in (0, 1); got {val_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int; got {type(seed).__name__}")
    n = images.shape[0]
    if n < 2:
        raise ValueError(f"`images` must hold at least 2 samples to split; got {n}")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val = perm[:n_val].sort().values
    train = perm[n_val:].sort().values
    return (images[train], masks[train]), (images[val], masks[val])

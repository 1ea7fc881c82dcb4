"""The benchmark's settings (logits' shapes, modes), the losses' hyperparameters and the measurement constants."""

from __future__ import annotations

SETTINGS = ("binary", "multiclass", "manyclass", "multiclass3d", "distance2d", "distance3d", "topology2d", "topology3d")
#: Settings of the distance-based losses only (boundary, Hausdorff DT).
DISTANCE_SETTINGS = ("distance2d", "distance3d")
#: Settings of the topology losses only (clDice, Skeleton Recall).
TOPOLOGY_SETTINGS = ("topology2d", "topology3d")
SETTING_MODE = {"binary": "binary", "multiclass": "multiclass", "manyclass": "multiclass", "multiclass3d": "multiclass",
                "distance2d": "multiclass", "distance3d": "multiclass", "topology2d": "multiclass",
                "topology3d": "multiclass"}
FULL_SHAPES = {"binary": (8, 1, 512, 512), "multiclass": (4, 8, 256, 256), "manyclass": (2, 150, 128, 128),
               "multiclass3d": (2, 4, 96, 96, 96), "distance2d": (4, 3, 128, 128), "distance3d": (2, 3, 64, 64, 64),
               "topology2d": (4, 2, 128, 128), "topology3d": (2, 2, 64, 64, 64)}
QUICK_SHAPES = {"binary": (2, 1, 32, 32), "multiclass": (2, 4, 32, 32), "manyclass": (1, 20, 16, 16),
                "multiclass3d": (1, 3, 8, 8, 8), "distance2d": (2, 3, 16, 16), "distance3d": (1, 3, 8, 8, 8),
                "topology2d": (2, 2, 16, 16), "topology3d": (1, 2, 8, 8, 8)}
FLOOR_NAME = {"binary": "floor F.binary_cross_entropy_with_logits", "multiclass": "floor F.cross_entropy"}

SMOOTH = 1e-5  # ours' default smoothing of the region losses
BIN_ALPHA = 0.25  # alpha of the sigmoid focal loss (torchvision's default)
GAMMA = 2.0  # focal gamma
TV_ALPHA, TV_BETA = 0.3, 0.7  # ours' Tversky defaults
FT_GAMMA = 0.75  # ours' focal-Tversky default
RTOL = 1e-3  # agreement threshold of the value check
POS_FRACTION = 0.3  # share of positives of the binary target
SIGNAL = 1.5  # how far the logits lean towards the target
SEED = 0
WARMUP = 2
NOISY = 1.5  # a median above NOISY x the fastest run of the same implementation is flagged as disturbed
MEM_TAG = "MEMRESULT "
MMAP_THRESHOLD = 1 << 17  # bytes; glibc's initial value, made fixed in the memory workers

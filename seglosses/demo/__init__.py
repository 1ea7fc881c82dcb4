"""The ``seglosses demo`` subcommand: one small U-Net per loss on an imbalanced segmentation set, compared."""

"""Benchmark of seglosses' core losses against peer libraries: forward + backward time and extra peak memory.

Run from the repository root, for example::

    PYTHONPATH=. python benchmarks/bench_core.py --quick
    PYTHONPATH=. python benchmarks/bench_core.py --only binary/ --json bench.json --markdown bench.md
    PYTHONPATH=. python benchmarks/bench_core.py --device cuda --only multiclass/dice,multiclass3d/

Also ``python -m seglosses.bench`` or the ``seglosses-bench`` console script; ``--png PATH`` draws a chart of the
ratios (matplotlib).

Settings (logits' shape): ``binary`` (8, 1, 512, 512) with a float {0, 1} target of the same shape;
``multiclass`` (4, 8, 256, 256), ``manyclass`` (2, 150, 128, 128, ADE20K-like) and ``multiclass3d``
(2, 4, 96, 96, 96) with int64 class-index targets (N, *); ``distance2d`` (4, 3, 128, 128) and ``distance3d``
(2, 3, 64, 64, 64) for the distance-based losses only; ``--settings`` picks some of them.
``--quick`` uses tiny shapes (a smoke run; its numbers mean nothing). Cases are named ``<setting>/<loss>``
(``binary/focal``, ``multiclass3d/dice``, ...); ``--only`` keeps those containing one of its comma-separated
substrings. The floor of each setting (``F.binary_cross_entropy_with_logits`` / ``F.cross_entropy``) always runs.

Data: seeded, generated on the CPU (identical on every device and in every process) and deliberately not symmetric,
so that definitions that differ also give different values: multiclass labels have class frequencies proportional
to 1 / (c + 1), binary targets 30 % positives, and the logits lean towards the target (frequent classes more).

Value check: before timing, every implementation's loss is compared with ours (relative difference < 1e-3). Peer
arguments are chosen so that the definitions match where the peer allows it (smoothing constants, reductions, alpha
conventions, batch vs per-image statistics, checked against the matching ours variant); each such choice is printed
as a note. A peer whose value still differs is printed with the known reason and reported as "differs" (timed, not a
failure).

Time: forward + backward on a fresh leaf copy of the logits (made outside the timed region). Each implementation gets
2 warm-up runs, then the ``--repeats`` timed runs of a case are interleaved (one run of each implementation, and of
the floor, per round), so a transient disturbance is spread over the whole group; the median is reported
(``time.perf_counter``, ``torch.cuda.synchronize`` before and after each run on cuda). The ratio to the floor uses
the floor's runs from the same rounds.

Extra peak memory of one forward + backward, the logits' gradient included, the logits and target excluded: on cpu
the rise of the peak RSS (``VmHWM``) in a fresh worker process per (case, implementation), after all timings of the
setting; on cuda ``torch.cuda.max_memory_allocated``. The method in detail: ``seglosses.bench.memory``.

Peers (segmentation_models_pytorch, torchvision, kornia, monai, keras on its torch backend) are optional: a missing
one is skipped with a note. A loss missing from ``seglosses`` is skipped with a note too; its peers and the floor
still run. Nothing here asserts on time.

Layout: ``settings`` (shapes, hyperparameters, constants), ``peers`` (the optional peer libraries), ``data``
(inputs), ``cases`` (the case table, one module per loss family), ``timing``, ``memory`` (the memory workers),
``runner`` (value check and timed rounds of one case), ``report`` (ratios, tables, chart), ``cli`` (arguments and
the run). Importing ``seglosses`` never imports this package.
"""

from .cli import main

__all__ = ["main"]

"""Layer 2: the fused passes and the backends that run them.

Three passes carry the work of every loss: the focal pass (loss and analytic gradient of the focal and
cross-entropy losses), the region pass (per-class sums behind every region loss, and their gradient) and the Lovasz
rows. Each has one reference implementation in blocked torch code and faster backends that must give the same
value, gradient and error:

* :mod:`~seglosses.kernels.focal`, :mod:`~seglosses.kernels.region`, :mod:`~seglosses.kernels.lovasz`: the blocked
  torch passes (the reference), over the tiling of :mod:`~seglosses.kernels.blocked`;
* :mod:`~seglosses.kernels.inductor`: the same torch code compiled by TorchInductor (CPU, policy "inductor");
* :mod:`~seglosses.kernels.native`: hand-written C kernels (CPU) with their loader;
* :mod:`~seglosses.kernels.triton`: Triton kernels (CUDA);
* :mod:`~seglosses.kernels.policy`: ``set_cpu_kernels`` / ``SEGLOSSES_CPU_KERNELS``;
* :mod:`~seglosses.kernels.dispatch`: the one ``select()`` that picks the backend of a call;
* :mod:`~seglosses.kernels.ops`: what the losses call (``focal_terms``, ``region_stats``, ``lovasz_rows``): the
  autograd Functions and the registered operators ``seglosses::focal_pass`` and ``seglosses::lovasz_rows``.

Nothing here imports :mod:`seglosses.losses`; see docs/architecture.md.
"""

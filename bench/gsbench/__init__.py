"""The benchmark suite: ``python bench/run.py`` (see bench/README.md).

Times this library's kernels against the same computation composed from NumPy, PyTorch
and JAX (the peers that are installed), with ``np.copyto`` on the same array as the
memory-bandwidth bound, for several shapes and dtypes.  Prints a markdown table and saves
the raw timings with machine information as JSON (plus the table as ``.md`` and, when
matplotlib is installed, a PNG plot).  See ``bench/README.md`` for how to read it.

A second section (``--suite extra``) times the other functions and options of the package
(categorical, top_k, log_gumbel_softmax, concrete_log_prob, relaxed_bernoulli and its
backward, mask=, per-row tau, float16/bfloat16, the recomputing backward) against the
peers that compute the same thing, and our options against our plain call.

Every measurement is a median over repeats; a repeat times a loop of calls long enough
to be measured reliably, and reports the time per call.  The SIMD target is chosen by
``GUMBEL_SOFTMAX_TARGET`` before the package is imported.

Modules: ``core`` (timing, problems, cases, peers, machine information),
``cases_main`` (the first section's rows), ``cases_extra`` (the second section's rows),
``runner`` (running the rows of a problem), ``goals`` (issue 15's goals for the soft
forward), ``report`` (markdown, saved files, plot) and
``cli`` (the command line, ``main``).  The suite is not part of the installed package:
it imports ``gumbel_softmax`` and times whatever build is installed.
"""

"""The layer that runs the stages: one registry, one module per stage, the run of them all.

- :mod:`.stages`: the registry, what every stage reads, depends on and writes;
- :mod:`.collection`: the configured dataset's tracks;
- one module per stage: :mod:`.features` (1a), :mod:`.cluster` (1b), :mod:`.label` (2),
  :mod:`.network` (3a, 3b and the ablation), :mod:`.train_av` (4), :mod:`.infer` (5),
  :mod:`.report`;
- :mod:`.run`: ``moodscape run``, every stale stage in order; :mod:`.summary`: its
  closing table;
- :mod:`.parallel`: per-track maps through Dask, in resumable chunks.

Each stage module reads a run's artifacts through :class:`~moodscape.artifacts.Workdir`,
calls the modelling modules (``features``, ``clustering``, ``labeling``, ``training``,
``inference``), which take and return arrays and tables, and writes its artifacts.
Nothing here is imported by the package ``moodscape`` itself: stages 1-2 never import torch.
"""

"""Training plumbing shared by the segmentation and inpainting applications.

One module per concern: ``config`` (YAML + ``key=value`` overrides), ``checkpoint`` (atomic
full-state checkpoints, safetensors weights, task checks), ``distributed`` (torchrun / DDP),
``amp`` (mixed precision), ``optim`` (SGD groups, poly LR with warmup), ``rng`` (seeding and
RNG state), ``data`` (resumable, rank-sharded sampling), ``logger`` (TensorBoard and progress
bar), ``loop`` (the iteration loop with NaN stop) and ``kernel_views`` (CARAFE kernel images).
"""

"""The recognisers: the multi-modal teacher, the single-modal students, their blocks and checkpoints."""

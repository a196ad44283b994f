"""What a run is on disk: its configuration and presets, the checkpoint schema, atomic pickle-free
checkpoints, which folders a command owns, and the text a run was trained on.

May import: nn, data and the base tier."""

"""Models out to PyTorch and ONNX, and in from PyTorch.

May import: training, sampling, store, nn, data and the base tier."""

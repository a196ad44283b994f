"""Models out to PyTorch, ONNX and an offline HTML page, and in from PyTorch.

May import: inside (the page's stylesheet and safe JSON), training, sampling, store, nn, data
and the base tier."""

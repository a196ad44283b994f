"""The maths: layers, the RNN/LSTM/GRU cells and the layer-normalised GRU as forward/backward
pairs over a whole window, the stacked model over a flat parameter dict, and the optimizers.

May import: NumPy and the base tier only."""

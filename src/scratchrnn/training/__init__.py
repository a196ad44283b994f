"""Running a training: the loop and its signals, data parallelism over MPI, held-out evaluation
and the loss curve.

May import: sampling, store, nn, data and the base tier."""

"""The playground: the request checks and the local HTTP server.

May import: inside, training, sampling, store, nn, data and the base tier."""

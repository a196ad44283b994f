"""Looking inside a model: sr.inspect and the units found automatically, the activation codec, the
offline page and its web/ files.

May import: training, sampling, store, nn, data and the base tier."""

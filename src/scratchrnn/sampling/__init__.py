"""Generation: one character at a time from a model, with temperature, top-k, top-p, argmax and
clamped units; a stop text, several samples of one prompt, and beam search.

May import: store, nn, data and the base tier."""

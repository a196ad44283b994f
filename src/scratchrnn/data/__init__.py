"""The text path: decoding and cleaning, vocabularies, finding files, folders, globs and the
download, streaming preparation into a memory-mapped corpus, splits, parallel streams and
windows.

May import: the base tier only."""

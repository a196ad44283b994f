"""The command line: it parses arguments and calls the library, nothing more; the console entry
point.

May import: every tier."""

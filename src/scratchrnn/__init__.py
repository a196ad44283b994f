"""scratchrnn: character-level RNN, LSTM and GRU language models written from scratch in NumPy.

    import scratchrnn as sr
    result = sr.train(sr.TrainConfig(text="book.txt", max_steps=500))
    print(sr.sample(result.model, result.vocab, prime="It was", length=200, seed=1))

The names below are imported on first use (PEP 562), so `import scratchrnn` (and the console
script, which starts by importing it) loads neither NumPy nor matplotlib until they are needed:
a Ctrl-C during those imports reaches the entry point's handler, not the user as a traceback.
"""

import importlib
import sys
import types

from .errors import ScratchRNNError

_WHERE = {
    "Checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "PRESETS": "config", "TrainConfig": "config", "with_preset": "config",
    "Corpus": "data", "load_corpus": "data", "evaluate": "evaluate",
    "CharRNN": "model", "ModelConfig": "model", "plot_history": "plot", "read_metrics": "plot",
    "Inspection": "inside", "inspect": "inside", "generate": "sample", "sample": "sample",
    "Vocab": "text", "clean": "text",
    "TrainResult": "train", "train": "train",
}

__all__ = [
    "PRESETS", "CharRNN", "Checkpoint", "Corpus", "Inspection", "ModelConfig", "ScratchRNNError",
    "TrainConfig", "TrainResult", "Vocab", "clean", "evaluate", "generate", "inspect",
    "load_checkpoint", "load_corpus", "plot_history", "read_metrics", "sample", "save_checkpoint",
    "train", "with_preset",
]
__version__ = "0.1.0"


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Importing a submodule binds it as an attribute of its package; `train`, `sample` and
    `evaluate` are both submodules and the API's functions, and the functions must win whichever
    is imported first (`sys.modules["scratchrnn.train"]` still reaches the module)."""

    def __setattr__(self, name, value):
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

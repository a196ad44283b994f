"""scratchrnn: character-level RNN, LSTM and GRU language models written from scratch in NumPy.

    import scratchrnn as sr
    result = sr.train(sr.TrainConfig(text="book.txt", max_steps=500))
    print(sr.sample(result.model, result.vocab, prime="It was", length=200, seed=1))

The names below are imported on first use (PEP 562), so `import scratchrnn` (and the console
script, which starts by importing it) loads neither NumPy nor matplotlib until they are needed:
a Ctrl-C during those imports reaches the entry point's handler, not the user as a traceback.
"""

import importlib

from .errors import ScratchRNNError

_WHERE = {  # public name -> the module it lives in
    "Corpus": "data.corpus",
    "load_corpus": "data.corpus",
    "Vocab": "data.vocab",
    "clean": "data.vocab",
    "Inspection": "inside.inspection",
    "inspect": "inside.inspection",
    "CharRNN": "nn.model",
    "ModelConfig": "nn.model",
    "generate": "sampling.sampler",
    "sample": "sampling.sampler",
    "Checkpoint": "store.checkpoint",
    "load_checkpoint": "store.checkpoint",
    "save_checkpoint": "store.checkpoint",
    "PRESETS": "store.config",
    "TrainConfig": "store.config",
    "with_preset": "store.config",
    "evaluate": "training.evaluation",
    "TrainResult": "training.loop",
    "train": "training.loop",
    "Plan": "training.plan",
    "plan": "training.plan",
    "plot_history": "training.plot",
    "read_metrics": "training.plot",
}

__all__ = [
    "PRESETS", "CharRNN", "Checkpoint", "Corpus", "Inspection", "ModelConfig", "Plan",
    "ScratchRNNError", "TrainConfig", "TrainResult", "Vocab", "clean", "evaluate", "generate",
    "inspect", "load_checkpoint", "load_corpus", "plan", "plot_history", "read_metrics", "sample",
    "save_checkpoint", "train", "with_preset",
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

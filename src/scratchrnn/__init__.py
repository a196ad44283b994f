"""scratchrnn: character-level RNN, LSTM and GRU language models written from scratch in NumPy.

    import scratchrnn as sr
    result = sr.train(sr.TrainConfig(text="book.txt", max_steps=500))
    print(sr.sample(result.model, result.vocab, prime="It was", length=200, seed=1))
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import PRESETS, TrainConfig, with_preset
from .data import Corpus, load_corpus
from .errors import ScratchRNNError
from .evaluate import evaluate
from .inside import Inspection, inspect
from .model import CharRNN, ModelConfig
from .plot import plot_history, read_metrics
from .sample import generate, sample
from .text import Vocab, clean
from .train import TrainResult, train

__all__ = [
    "PRESETS", "CharRNN", "Checkpoint", "Corpus", "Inspection", "ModelConfig", "ScratchRNNError",
    "TrainConfig", "TrainResult", "Vocab", "clean", "evaluate", "generate", "inspect",
    "load_checkpoint", "load_corpus", "plot_history", "read_metrics", "sample", "save_checkpoint",
    "train", "with_preset",
]
__version__ = "0.1.0"

"""Command line: parses arguments and calls the library; every failure is one line on stderr."""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import re
import sys
import typing
import warnings
from pathlib import Path

from ..errors import ScratchRNNError, Voice, as_flag
from ..fsutil import describe_os_error
from ..inside.visualize import visualize_run
from ..limits import MAX_BEAM, MAX_PROMPT, MAX_SAMPLES
from ..safejson import dumps as json_dumps
from ..sampling.options import check_samples, read_prompt, seeds
from ..sampling.sampler import generate, shared_stepper
from ..store.checkpoint import load_checkpoint, resolve
from ..store.config import PRESETS, TrainConfig, default_out, parse_duration, with_preset
from ..store.owner import check_output, default_output
from ..store.resume import run_corpus
from ..training.evaluation import chars_read, evaluate, held_out, report, unknown_characters
from ..training.loop import train
from ..training.plan import plan
from ..training.plot import plot_history, read_metrics
from .output import WRITE_ERRNOS, drop_stdout, stdout_writable, write_sample

EXIT_ERROR, EXIT_USAGE, EXIT_SIGINT, EXIT_SIGTERM, EXIT_SIGPIPE = 1, 2, 130, 143, 141
# how the command line says the library's lines: parameters as flags, and its own commands
CLI = Voice(as_flag, lambda run: f"scratchrnn train --resume {run}",
            "mpiexec -n 2 scratchrnn train --distributed mpi ...")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        raise ScratchRNNError(f"{message} (see '{self.prog} --help')")


def _shown(value) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else (
        f"{value:g}" if isinstance(value, float) else str(value))


def _flag(hint, metadata) -> dict:
    """argparse's keywords for a TrainConfig field: its type from the annotation (a switch
    for a bool), its help and any detail from its declaration (config.option)."""
    kw = dict(metadata)
    kw["help"] = CLI(kw["help"])
    if hint is bool:
        kw.update(action=argparse.BooleanOptionalAction, default=None)
    elif "type" not in kw and "nargs" not in kw:
        base = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
        if base is not str:
            kw["type"] = base
    return kw


def _train_args(p: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()

    def a(*flags, **kw):  # each flag's default comes from TrainConfig, never typed again
        action = p.add_argument(*flags, **kw)
        value = getattr(defaults, action.dest, None)
        if value is not None and action.help:
            action.help += f" (default: {_shown(value)})"

    hints = typing.get_type_hints(TrainConfig)
    first = ("text", "out")  # what and where, then how to start, then the settings
    fields = sorted(dataclasses.fields(TrainConfig), key=lambda f: f.name not in first)
    for f in fields[:len(first)]:
        a(as_flag(f.name), **_flag(hints[f.name], f.metadata))
    a("--preset", choices=sorted(PRESETS), help="seed: the original notebook; tiny: a quick "
      "look; shakespeare: the best 8.4-minute recipe (BENCHMARKS.md; still give --text); its "
      "values replace the defaults below")
    a("--resume", metavar="RUN", help="continue the run in this folder or checkpoint, on the "
      "same text (checked by content; --text may give it under another path)")
    a("--overwrite", action="store_true", help="replace the run already in --out (only the "
      "run's own files; a folder holding other files is never used)")
    a("--allow-new-text", action="store_true", help="with --resume: continue over a --text "
      "whose content changed since the run started (normally refused)")
    for f in fields[len(first):]:
        a(as_flag(f.name), **_flag(hints[f.name], f.metadata))
    a("--quiet", action="store_true", help="no progress bar (the bar shows steps, steps/s, "
      "the train and validation loss in nats/char, and characters trained on per second)")
    a("--dry-run", action="store_true", help="say what this run would be (settings, corpus, "
      "parameters, memory, steps) and time a few of its steps here, then stop: nothing trained "
      "or written")
    a("--json", action="store_true", help="with --dry-run: the plan as one JSON object")
    a("--distributed", choices=("mpi",), help="data-parallel over MPI ranks: run as mpiexec -n N "
      "scratchrnn train --distributed mpi ... (--batch splits over the N ranks)")


def _clamp(text: str) -> tuple[int, int, float]:
    try:
        layer, unit, value = text.split(":")
        return int(layer), int(unit), float(value)
    except ValueError:
        raise ScratchRNNError(f"--clamp takes LAYER:UNIT:VALUE, e.g. 0:17:1.0, got {text!r}") \
            from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scratchrnn", description="Character-level RNN, LSTM and GRU language "
                     "models from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _train_args(sub.add_parser("train", help="train a model (default: on the book)"))
    s = sub.add_parser("sample", help="generate text from a trained model")
    s.add_argument("run", help="run folder or checkpoint file")
    s.add_argument("--prime", help="text to start from")
    s.add_argument("--prime-file", metavar="FILE", help="start from the text of this UTF-8 "
                   f"file, exactly (a final line break too; at most {MAX_PROMPT:,} characters)")
    s.add_argument("--length", type=int, default=500)
    s.add_argument("--temperature", type=float, help="(default 0.8)")
    s.add_argument("--top-k", type=int)
    s.add_argument("--top-p", type=float)
    s.add_argument("--argmax", action="store_true", help="always take the likeliest character")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--clamp", metavar="LAYER:UNIT:VALUE", type=_clamp,
                   help="hold one unit of one layer's h at VALUE while generating, e.g. 0:17:1")
    s.add_argument("--num-samples", metavar="N", type=int, help="N independent samples of the "
                   "one prompt, sample i drawn with seed --seed + i (so it is what that seed "
                   "gives alone), each after a line '--- sample i of N (seed S) ---' (N at most "
                   f"{MAX_SAMPLES:,})")
    s.add_argument("--beam", metavar="K", type=int, help="beam search of width K: the single "
                   "most likely continuation (largest sum of log-probabilities) of at most "
                   "--length characters. It gives one likely, often repetitive text and none "
                   "of the variety of sampling; --temperature, --top-k, --top-p and --argmax do "
                   f"not apply (K at most {MAX_BEAM})")
    s.add_argument("--stop-at", metavar="TEXT", help="end a sample where TEXT first appears in "
                   "the generated text; TEXT itself is not printed. \\n, \\t and \\\\ are "
                   "read as a line break, a tab and a backslash: '\\n\\n' ends at a blank line")
    e = sub.add_parser("eval", help="held-out loss of a trained model")
    e.add_argument("run", help="run folder or checkpoint file")
    e.add_argument("--text", nargs="+", help="evaluate on this text (a file, folder, glob or "
                   "several) instead of the run's corpus")
    e.add_argument("--split", choices=("val", "test", "all"),
                   help="which part of the text (default: val; all with --text)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    x = sub.add_parser("export", help="write a run's model for PyTorch, ONNX or a web page")
    x.add_argument("run", help="run folder or checkpoint file")
    x.add_argument("--format", required=True, choices=("torch", "onnx", "html"),
                   help="torch: safetensors state dict; onnx: an ONNX graph; html: one offline "
                   "page that writes text in the browser")
    x.add_argument("--out", help="file to write (default: RUN/model.safetensors, .onnx or "
                   ".html)")
    m = sub.add_parser("import", help="make a run of a PyTorch character model's state dict")
    m.add_argument("file", help=".safetensors or .pt state dict of nn.Embedding -> "
                   "nn.RNN/LSTM/GRU -> nn.Linear")
    m.add_argument("--vocab", help="the model's characters in index order, or a file holding "
                   "exactly them (default: the file's metadata, as export writes)")
    m.add_argument("--out", help="run folder to create (default: runs/<file name>)")
    v = sub.add_parser("visualize", help="write one HTML page that shows inside the model")
    v.add_argument("run", help="run folder or checkpoint file")
    where = v.add_mutually_exclusive_group()
    where.add_argument("--text", help="look at the start of this file")
    where.add_argument("--split", choices=("val", "test"),
                       help="look at the start of the run's val (default) or test split")
    v.add_argument("--chars", type=int, default=4000, help="characters to show (default 4000)")
    v.add_argument("--out", help="HTML path (default: RUN/inside.html)")
    p = sub.add_parser("plot", help="redraw the loss curve of a run")
    p.add_argument("run", help="run folder")
    p.add_argument("--out", help="PNG path (default: RUN/loss.png)")
    v = sub.add_parser("serve", help="a local playground: look inside the model, generate")
    v.add_argument("run", help="run folder or checkpoint file")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "127.0.0.1, this machine only)")
    v.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    return parser


def _one_or_list(text: list[str] | None):
    """--text a.txt stays the string it always was in a saved config; several stay a list."""
    return text[0] if text and len(text) == 1 else text


def _cmd_train(args) -> int:
    fields = {k: v for k, v in vars(args).items()
              if k not in ("command", "preset", "resume", "overwrite", "quiet", "allow_new_text",
                           "distributed", "dry_run", "json")}
    fields["text"] = _one_or_list(args.text)
    fields["time_budget"] = parse_duration(fields["time_budget"])
    if args.dry_run and args.distributed:
        raise ScratchRNNError("--dry-run plans the run in this one process; drop --distributed")
    if args.json and not args.dry_run:
        raise ScratchRNNError("--json goes with --dry-run; a training writes its numbers to "
                              "metrics.jsonl in its run folder")
    if args.distributed:
        from ..training.distributed import session  # mpi4py loads only for distributed runs

        with session(voice=CLI) as comm:
            return _train(args, fields, comm)
    return _train(args, fields, None)


def _train(args, fields, comm) -> int:
    def run(*config, **kw):  # --dry-run: the same arguments, checked alike, planned instead
        if args.dry_run:
            said = plan(*config, **kw)
            print(json_dumps(said.to_dict()) if args.json else "\n".join(said.lines(CLI)))
            return None
        return train(*config, progress=not args.quiet, comm=comm, voice=CLI, **kw)

    if args.resume:
        if args.preset:
            raise ScratchRNNError("--preset starts a new run; drop it when you --resume")
        result = run(resume=args.resume, allow_new_text=args.allow_new_text, **fields)
    else:
        if args.allow_new_text:
            raise ScratchRNNError("--allow-new-text goes with --resume; a new run reads any "
                                  "--text")
        if args.preset and not fields["out"]:  # a run of its own, not the plain run's folder
            fields["out"] = str(default_out(fields["text"], args.preset))
        result = run(with_preset(args.preset), overwrite=args.overwrite, **fields)
    if result is None:
        return 0
    return {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM,
            "SIGPIPE": EXIT_SIGPIPE}.get(result.stopped, 0)


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def _unescape(text: str | None) -> str | None:
    """A shell cannot easily pass a line break: \\n, \\t and \\\\ stand for them."""
    return None if text is None else re.sub(r"\\([nt\\])", lambda m: _ESCAPES[m[1]], text)


def _cmd_sample(args) -> int:
    if args.prime is not None and args.prime_file is not None:
        raise ScratchRNNError("--prime and --prime-file both give a prompt; pick one")
    _nonempty(args.prime_file, "--prime-file")
    prime = read_prompt(args.prime_file) if args.prime_file is not None else args.prime or ""
    ckpt = load_checkpoint(args.run)
    # 0.8 for a draw; beam search draws nothing, and refuses a --temperature given to it
    temperature = 0.8 if args.temperature is None and args.beam is None else args.temperature
    check_samples(args.num_samples, args.length, args.beam)
    n = args.num_samples or 1
    steps = shared_stepper(ckpt.model, args.clamp)  # the weights prepared once for all n
    runs = [(s, generate(ckpt.model, ckpt.vocab, prime, args.length, temperature, args.top_k,
                         args.top_p, args.argmax, s, args.clamp, stop_at=_unescape(args.stop_at),
                         beam=args.beam, steps=steps)) for s in seeds(args.seed, n)]  # checked
    for i, (seed, chars) in enumerate(runs):
        if n > 1:
            write_sample(f"--- sample {i + 1} of {n} (seed {seed}) ---", iter(()))
        write_sample(prime, chars)
    return 0


def _nonempty(value, flag):
    values = value if isinstance(value, list) else [value]
    if value is not None and any(not v.strip() for v in values):
        raise ScratchRNNError(f"{flag} is empty; give a path or leave the flag out")
    return value


def _cmd_eval(args) -> int:
    _nonempty(args.text, "--text")
    ckpt = load_checkpoint(args.run)
    cfg = TrainConfig.from_dict(ckpt.config)
    split = args.split or ("all" if args.text else "val")
    text = _one_or_list(args.text) if args.text else cfg.text
    corpus = run_corpus(ckpt, text if args.text else None, whole=split == "all")
    data, whole = held_out(corpus, split, cfg.val_chars)
    if args.text:  # said once the text is known to be scored: a refusal stays one line
        unknown_characters(text, ckpt.vocab, cfg.encoding)
    result = dict(report(evaluate(ckpt.model, data, cfg.seq_len)), split=split,
                  chars=chars_read(len(data)), checkpoint=str(resolve(args.run)))
    if args.json:
        print(json_dumps(result))
    else:
        cut = f" of the split's {whole:,} (the run's --val-chars)" if len(data) < whole else ""
        print(f"{split}: {result['nats_per_char']:.4f} nats/char, {result['bits_per_char']:.4f} "
              f"bits/char, perplexity {result['perplexity']:.3f} over {result['chars']:,} "
              f"chars{cut}")
    return 0


def _cmd_export(args) -> int:
    from ..interop.export import export  # optional dependencies load only for this command

    print(export(args.run, args.format, args.out))
    return 0


def _cmd_import(args) -> int:
    from ..interop.torch_import import import_model

    print(import_model(args.file, args.vocab, args.out))
    return 0


def _cmd_plot(args) -> int:
    _nonempty(args.out, "--out")
    rows = read_metrics(args.run)
    if args.out:  # a run's loss.png may be replaced by its own curve, not another run's
        own = Path(args.out).parent.resolve() == Path(args.run).resolve()
        out = check_output(args.out, "plot", names=("loss.png",) if own else ())
    else:
        out = default_output(args.run, "loss.png", "plot")
    print(plot_history(rows, out, Path(args.run).name))
    return 0


def _cmd_visualize(args) -> int:
    print(visualize_run(args.run, args.text, args.split, args.chars, args.out))
    return 0


def _cmd_serve(args) -> int:
    from ..serve.server import run

    return run(args.run, args.host, args.port)


def _warn(message, category, filename, lineno, file=None, line=None):
    print(f"scratchrnn: warning: {CLI(str(message))}", file=sys.stderr)


def _speaks(argv) -> bool:
    """Under mpiexec every rank parses the same command line and fails alike before training
    starts (training's own failures go through distributed.session): rank 0 says it once."""
    words = sys.argv[1:] if argv is None else argv
    rank = next((os.environ[v] for v in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
                 if v in os.environ), "0")
    return rank == "0" or not any(str(w).startswith("--distributed") for w in words)


def main(argv=None) -> int:
    commands = {"train": _cmd_train, "sample": _cmd_sample, "eval": _cmd_eval,
                "plot": _cmd_plot, "export": _cmd_export, "import": _cmd_import,
                "visualize": _cmd_visualize, "serve": _cmd_serve}
    old_showwarning = warnings.showwarning
    warnings.showwarning = _warn
    # A path from the command line that is not UTF-8 holds surrogate escapes; written back as
    # its own bytes it names the file, where a strict stdout (a UTF-8 locale) would raise.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="scratchrnn-stdout")
    try:
        args = build_parser().parse_args(argv)
        return commands[args.command](args)
    except ScratchRNNError as e:
        if _speaks(argv):
            print(f"scratchrnn: error: {CLI(str(e))}", file=sys.stderr)
        else:  # rank 0 may be waiting for this rank, started with other flags
            from ..training.distributed import report_early

            report_early(e, CLI)
        return EXIT_ERROR
    except KeyboardInterrupt as e:  # a second Ctrl-C during training is Interrupted
        print("scratchrnn: interrupted", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_SIGINT)
    except MemoryError:
        print("scratchrnn: error: out of memory; use a smaller --batch, --hidden or "
              "--val-chars", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `scratchrnn sample ... | head` closed the pipe: not an error
        return 0
    except OSError as e:  # what no command caught
        if e.filename is None and (e.errno in WRITE_ERRNOS or not stdout_writable()):
            drop_stdout()  # the likely culprit (`scratchrnn eval > /dev/full`); no exit flush
            msg = describe_os_error(e, "standard output", "output to")
        else:
            msg = f"{e.strerror or e}{f' ({e.filename})' if e.filename else ''}"
        print(f"scratchrnn: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        warnings.showwarning = old_showwarning

"""The training loop: B parallel streams, T-step windows, truncated BPTT with the hidden state
carried from window to window (reset at each epoch), clipping, an optimizer step, and a run
folder with checkpoints, metrics, a loss plot and samples. Everything the loop depends on is in
the checkpoint, so a resumed run continues bit for bit as if it had never stopped."""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data.corpus import Corpus, load_corpus, make_streams, window, windows_per_epoch
from ..data.vocab import Vocab
from ..errors import PYTHON, ScratchRNNError, Voice
from ..fsutil import atomic_write_bytes
from ..nn import optim
from ..nn.model import CharRNN, backward, forward
from ..safejson import dumps as json_dumps
from ..sampling.sampler import generate
from ..store.checkpoint import load_checkpoint, save_checkpoint, usable_model
from ..store.config import TrainConfig, model_config
from ..store.owner import RunFolder
from ..store.resume import resume_text, vocab_arg
from ..threads import BlasThreads
from . import auto
from .distributed import Alone  # mpi4py loads only in distributed.connect
from .evaluation import evaluate
from .plan import check_corpus, settle, total_steps
from .plot import plot_history
from .signals import STOPPED_BY, Signals

REMAP_EVERY = 256  # steps between fresh mappings of a memory-mapped corpus


@dataclass
class TrainResult:
    model: CharRNN  # the weights to use: their moving average with `ema`
    vocab: Vocab
    out: Path
    step: int
    epoch: int
    val_loss: float | None
    best_val: float | None
    stopped: str  # epochs, max_steps, time_budget, SIGINT, SIGTERM or SIGPIPE (stdout closed)
    history: list = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return self.stopped.startswith("SIG")


def _stat(path: Path) -> tuple[int, int] | None:
    """A file's (size, mtime): enough to tell whether it was replaced since it was read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def train(config: TrainConfig | None = None, *, resume=None, progress: bool = True,
          overwrite: bool = False, allow_new_text: bool = False, log=print, comm=None,
          voice: Voice = PYTHON, **overrides) -> TrainResult:
    """Train a new run from `config` (plus keyword overrides), or continue the run folder or
    checkpoint `resume` (keyword overrides may raise `max_steps`, `epochs`, change `lr` ...).
    A resumed run checks that its text has the content it started with (`text=` may name the
    same text under another path); `allow_new_text` goes on over a changed text instead.
    `comm` (from `with distributed.session() as comm:`, under mpiexec) trains data-parallel:
    rank 0 owns the run folder, and the other ranks read what it prepared. `voice` is how
    the front end says the lines the run prints (errors.Voice: the command line's says flags)."""
    comm = comm or Alone()
    lead = comm.rank == 0
    log = log if lead else (lambda *a, **k: None)  # the other ranks are quiet
    ckpt = load_checkpoint(resume, resume=True) if resume is not None else None
    read_as = _stat(ckpt.path) if ckpt is not None else None
    cfg, out, text = settle(config, ckpt, overrides)
    free = auto.free_keys(config, overrides, ckpt is not None)
    if free and comm.size > 1:  # each process would time its own share of the machine
        log(voice("`auto` chooses nothing under mpiexec: give the model options you want"))
        free = ()
    comm.check_same(cfg, ckpt, allow_new_text)  # ranks started alike, before any writes
    comm.rows(cfg.batch)  # refuses a --batch that does not split over the ranks
    with (RunFolder(out, resume_from=ckpt.path.parent if ckpt else None, overwrite=overwrite)
          if lead else nullcontext()) as run:
        if (ckpt is not None and comm.size == 1 and _stat(ckpt.path) != read_as
                and out.resolve() == ckpt.path.parent.resolve()):
            # A training that held the lock until now saved a newer checkpoint than the one
            # read above: this run must go on from that one.
            ckpt = load_checkpoint(ckpt.path, resume=True)
            cfg = cfg.replace(text=resume_text(ckpt.meta, ckpt.config, text))
        vocab = vocab_arg(cfg.vocab, ckpt.vocab) if ckpt else cfg.vocab
        if not lead:
            comm.barrier("corpus")  # rank 0 prepares a large corpus once; the others map it
        corpus = load_corpus(cfg.text, vocab, cfg.val_frac, cfg.test_frac, cfg.encoding,
                             cache=out, min_count=cfg.min_count)
        cfg, identity, new_text = check_corpus(cfg, corpus, ckpt, text, allow_new_text)
        choice = None
        if free:  # before config.json: it holds what was chosen
            cfg, choice = auto.choose(cfg, corpus, free, log, voice)
        if lead:
            comm.barrier("corpus")
        if ckpt is None and overwrite and lead:
            run.clear()  # the earlier run's results go only once the new run can start
        if lead:
            atomic_write_bytes(out / "config.json", json_dumps(cfg.to_dict(), indent=2).encode(),
                               "run configuration")
        if ckpt is not None:
            model = ckpt.trained
            opt_state, state, meta = ckpt.opt_state, ckpt.state, dict(ckpt.meta)
            if not cfg.ema:  # a run resumed without `ema` stops carrying its average
                opt_state = {k: v for k, v in opt_state.items() if not k.startswith("ema.")}
            if new_text:  # a new pass over the new text; its validation starts a new best
                how = voice("(`allow_new_text`)")
                log(f"the text changed since the run started; continuing over {corpus.name} "
                    f"from the start of an epoch {how}")
                meta.update(window=0, best_val=None)
        else:
            model = CharRNN.from_config(model_config(cfg, len(corpus.vocab)), cfg.seed)
            opt_state = optim.init_state(cfg.optimizer, model.params)
            state, meta = model.init_state(cfg.batch), {}
        if choice:
            meta["auto"] = choice.record()
        meta["corpus"] = identity
        meta["vocab_counts"] = corpus.counts.tolist()
        return _loop(cfg, corpus, model, opt_state, state, meta, out, progress, log, comm,
                     voice)


@dataclass
class RunState:
    """Where a run stands, all of it: a checkpoint's metadata is this, written out, and a
    resumed run starts from it (with the parameters, optimizer state and hidden state)."""
    step: int = 0
    epoch: int = 0
    window: int = 0  # the next window of the epoch
    rng: dict | None = None  # the dropout and weight-drop generator's state
    elapsed_s: float = 0.0  # seconds trained before this invocation
    history: list = field(default_factory=list)  # the metric rows
    best_val: float | None = None
    acc: tuple = (0.0, 0)  # train loss summed since the last logged row, and its step count
    corpus: dict | None = None  # the text's identity, which a resume checks
    vocab_counts: list | None = None  # how often each symbol occurs in the text
    auto: dict | None = None  # what `auto` chose for the run, and from what (auto.Choice)

    @classmethod
    def of(cls, meta: dict) -> RunState:
        return cls(**{f.name: meta[f.name] for f in fields(cls) if f.name in meta})

    def meta(self) -> dict:  # a run that chose nothing keeps the metadata runs always had
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "auto" or self.auto is not None}


def _loop(cfg, corpus: Corpus, model, opt_state, state, meta, out: Path, progress, log, comm,
          voice: Voice):
    lead, rows = comm.rank == 0, comm.rows(cfg.batch)  # this rank's streams
    streams = make_streams(corpus.train, cfg.batch)[rows]  # (B/N, L)
    state = {k: v[rows] for k, v in state.items()}  # (B/N, H) each
    n_win = windows_per_epoch(streams, cfg.seq_len)
    run = RunState.of(meta)
    step, epoch, win, best = run.step, run.epoch, run.window, run.best_val
    total = total_steps(cfg, n_win, win)
    history = list(run.history)
    acc_loss, acc_n = run.acc
    rng = np.random.default_rng([cfg.seed, 1])  # dropout and weight-drop masks
    if run.rng is not None:
        rng.bit_generator.state = run.rng
    drop_rng = comm.dropout_rng(rng, cfg.batch)  # all B streams' masks, this rank's rows
    metrics_path = out / "metrics.jsonl"
    if lead:  # rows after the checkpoint belong to steps that will be trained again
        atomic_write_bytes(metrics_path, "".join(json_dumps(r) + "\n" for r in history).encode(),
                           "metrics")
    if total is not None and step >= total:
        go_on = voice("raise `max_steps` or `epochs` to go on")
        log(f"{out} is already finished at step {step}; {go_on}")
        return TrainResult(usable_model(model, opt_state), corpus.vocab, out, step, epoch,
                           None, best, "finished", history)
    signals = Signals()
    signals.say(log, f"training {model!r} on {corpus.name}: {len(corpus.train):,} train / "
                f"{len(corpus.val):,} val symbols, {n_win} windows per epoch -> {out}")
    signals.say(log, corpus.describe(cfg.vocab))
    blas = BlasThreads(comm.size)  # fewer threads while other processes keep cores busy
    signals.say(log, blas.line)
    # what a diverging run can point to: a checkpoint of this run, not one it is replacing
    last_saved = out / "checkpoint.npz" if meta and (out / "checkpoint.npz").exists() else None
    comm.saved = last_saved
    t0 = time.perf_counter()
    t_log, chars_since = t0, 0
    val, stopped, lr = None, None, cfg.lr
    bar = tqdm(total=total, initial=step, unit="step", disable=not (progress and lead),
               dynamic_ncols=True)

    def learning_rate(step, seconds):
        if cfg.schedule == "constant":
            return optim.learning_rate(cfg.lr, step, cfg.warmup)
        time_frac = seconds / cfg.time_budget if cfg.time_budget else None
        return optim.learning_rate(cfg.lr, step, cfg.warmup, total, cfg.min_lr, time_frac)

    def train_step(x, y):
        """One window forward and back, its gradients averaged over the ranks and clipped, and
        the update (or, for a non-finite loss, the stop or skip `on_nan` asks for)."""
        nonlocal state, lr, acc_loss, acc_n
        loss, new_state, cache = forward(model.params, model.config, x, y, state, drop_rng)
        grads, _ = backward(cache, model.config)
        # the mean over all B streams, and one clock (rank 0's) for a time-based schedule
        grads, loss, clock = comm.reduce(grads, loss, time.perf_counter() - t0)
        norm = optim.clip(grads, cfg.clip_value, cfg.clip_norm)
        if math.isfinite(loss) and math.isfinite(norm):
            lr = learning_rate(step, clock)
            optim.update(cfg.optimizer, model.params, grads, opt_state, lr,
                         (cfg.beta1, cfg.beta2))
            if cfg.ema:
                optim.average(model.params, opt_state, cfg.ema)
            state = new_state
            acc_loss, acc_n = acc_loss + loss, acc_n + 1
            return
        what = f"loss {loss:.4g}, gradient norm {norm:.4g}"
        if cfg.on_nan == "stop" and last_saved is None:
            raise ScratchRNNError(
                f"training diverged at step {step + 1} ({what}) before this run saved "
                "a checkpoint; start it again with a lower `lr` (or `init_std`), or "
                "pass `on_nan` skip")
        if cfg.on_nan == "stop":
            raise ScratchRNNError(
                f"training diverged at step {step + 1} ({what}); the last good "
                f"checkpoint is {last_saved}: resume it with a lower `lr`, "
                "or pass `on_nan` skip")
        if lead:
            tqdm.write(f"step {step + 1}: {what}; {voice('update skipped (`on_nan` skip)')}",
                       file=sys.stderr)

    def stop_reason():
        if signals.received:
            return signals.received
        if total is not None and step >= total:
            return "max_steps" if cfg.max_steps and step >= cfg.max_steps else "epochs"
        if cfg.time_budget and time.perf_counter() - t0 >= cfg.time_budget:
            return "time_budget"
        return None

    def log_row(usable):
        """The metrics row of this step, with the validation loss of `usable` (the weights
        rank 0 evaluates, None elsewhere and between evaluations); -> the row and the stop a
        signal during validation asks for, or None."""
        nonlocal t_log, chars_since, acc_loss, acc_n, val
        now = time.perf_counter()
        row = {"step": step, "epoch": epoch + win / n_win,
               "train_loss": acc_loss / acc_n if acc_n else None,
               "lr": lr if acc_n else None,
               "chars_per_sec": round(chars_since / max(now - t_log, 1e-9), 1),
               "elapsed_s": round(run.elapsed_s + now - t0, 3)}
        t_log, chars_since = now, 0
        if step % cfg.log_every == 0:  # off-grid rows (stops, evals) leave the average be
            acc_loss, acc_n = 0.0, 0
        cut = None
        if usable is not None and stopped not in STOPPED_BY and len(corpus.val) > 1:
            val = evaluate(usable, corpus.val, cfg.seq_len,
                           max_chars=cfg.val_chars, should_stop=signals.stop_requested)
            if val is None:  # stopped part way: save now, with no validation loss
                cut = signals.received
            elif not math.isfinite(val):
                val = None  # a diverged average: no number to record or compare
            else:
                row["val_loss"], row["val_bpc"] = val, val / math.log(2)
        history.append(row)
        metrics.write(json_dumps(row) + "\n")
        metrics.flush()
        bar.set_postfix({"train loss": f"{row['train_loss'] or float('nan'):.3f}",
                         "val loss": f"{val:.3f}" if val is not None else "-",
                         "chars/s": f"{row['chars_per_sec']:.0f}"})  # cli: --quiet
        return row, cut

    def checkpoint(path, every):
        nonlocal last_saved
        now = RunState(step, epoch, win, rng.bit_generator.state,
                       run.elapsed_s + time.perf_counter() - t0, history, best,
                       (acc_loss, acc_n), meta["corpus"], meta["vocab_counts"],
                       meta.get("auto"))
        save_checkpoint(path, model, corpus.vocab, cfg.to_dict(), now.meta(), opt_state, every)
        last_saved = comm.saved = out / "checkpoint.npz"

    def save_and_sample(row, usable):
        """Rank 0 after an evaluation: the checkpoint (and best.npz when validation
        improved), the loss plot, and a sample; -> the stop a signal during the sample asks."""
        nonlocal best
        every = comm.gather_state(state)  # every stream's state: resumable at any N
        if not lead:
            return None
        improved = "val_loss" in row and (best is None or val < best)
        best = val if improved else best
        checkpoint(out / "checkpoint.npz", every)  # first: a kill between the two
        if improved:  # writes must still leave a resumable run
            checkpoint(out / "best.npz", every)
        plot_history(history, out / "loss.png", f"{model.config.cell} on {corpus.name}")
        if not cfg.sample_length or stopped in STOPPED_BY:
            return None
        text = []
        for ch in generate(usable, corpus.vocab, "",
                           cfg.sample_length, 0.8, seed=step):
            if signals.received:  # a long sample must not outlive a Ctrl-C
                return signals.received
            text.append(ch)
        signals.say(tqdm.write, f"--- step {step}, val {val if val is None else round(val, 4)}"
                    f" nats/char ---\n{''.join(text)}\n---")
        return None

    # Overflow shows up as a non-finite loss or gradient norm, handled in train_step.
    with (signals, open(metrics_path if lead else os.devnull, "a", encoding="utf-8") as metrics,
          bar, blas, np.errstate(over="ignore", invalid="ignore")):
        while stopped is None:
            if corpus.mapped is not None and step % REMAP_EVERY == 0:
                corpus = corpus.refresh()  # keeps resident memory small on huge corpora
                streams = make_streams(corpus.train, cfg.batch)[rows]
            if win == 0:
                state = model.init_state(len(streams))  # each epoch starts from a zero state
            x, y = window(streams, win, cfg.seq_len)  # (B/N, T) each
            train_step(x, y)
            step, win = step + 1, win + 1
            if change := blas.tick():
                signals.say(tqdm.write, f"step {step}: {change}")
            chars_since += x.size * comm.size
            if win == n_win:
                epoch, win = epoch + 1, 0
            stopped = comm.agree(stop_reason())  # every rank stops at the same step
            evaluating = step % cfg.eval_every == 0 or stopped is not None
            if step % cfg.log_every and not evaluating:
                bar.update(1)
                continue
            usable = usable_model(model, opt_state) if evaluating and lead else None
            row, cut = log_row(usable)
            stopped = cut or stopped
            bar.update(1)
            if evaluating:  # a signal may cut rank 0's evaluation or sample short
                stopped = comm.agree(save_and_sample(row, usable) or stopped)
    if stopped == "SIGPIPE" and lead:
        why = signals.stdout_error
        why = "was closed" if why is None else f"could not be written ({why.strerror or why})"
        print(f"scratchrnn: stdout {why} at step {step}; saved {out / 'checkpoint.npz'} "
              f"(continue with: {voice.resume(out)})", file=sys.stderr)
    elif stopped in STOPPED_BY:
        signals.say(log, f"interrupted by {stopped} at step {step}; saved "
                    f"{out / 'checkpoint.npz'} (continue with: {voice.resume(out)})")
    else:
        signals.say(log, f"stopped at step {step} ({stopped}); val "
                    f"{val if val is None else round(val, 4)} nats/char; checkpoints in {out}")
    return TrainResult(usable_model(model, opt_state), corpus.vocab, out, step, epoch, val, best,
                       stopped, history)

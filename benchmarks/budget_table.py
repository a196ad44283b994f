"""Quality per time budget over corpus sizes: the measurements training/auto.py's rule is
derived from (`--time-budget` alone choosing the settings, issue 32), and the table that checks
it (BENCHMARKS.md, "Settings for your minutes").

For every corpus x budget x recipe it trains one run with `scratchrnn train --time-budget B`
(epochs unbounded, so the budget stops it), validating about 12 times over the run (the
steps the budget buys come from `train --dry-run --json`, this machine's measured step cost),
and scores the best checkpoint on the validation and test splits. One run at a time: two
timed runs on one machine slow each other. Each finished run is a line of --out (JSON, with the
machine's load before and after), so an interrupted table resumes where it stopped. `--table
FILES` prints, per corpus and budget, every recipe's validation loss (repeats averaged), the
best one, the pick `auto.rule` makes from the step costs measured in the cell, how far it is
from the best and from `today`, and the fit of auto.EXPECTED (the loss to expect).

    python benchmarks/budget_table.py --budgets 2m            # the three shared corpora
    python benchmarks/budget_table.py --budgets 2m 10m 30m --out budget.jsonl   # hours
    python benchmarks/budget_table.py --corpus mine=notes/ --recipes default small-reg
    python benchmarks/budget_table.py --table budget.jsonl    # the table and the fit only

Recipes are flag sets on top of the defaults (RECIPES): `auto` is `scratchrnn train` with only
the budget, which chooses the settings; `default` is the default settings with `--no-auto`,
trained until the budget ends; `today` is what `--time-budget` alone did before auto: the
default settings, stopped by the default 10 epochs when they come first; `wide10` and `deep10`
stop after 10 epochs too, and such a run, when its epochs stop it within a shorter budget,
stands for the longer ones (STOPPED). A recipe without `--no-auto` gets auto's choice of the
options it leaves (`deep10` gives `--layers` and `--epochs`, and auto keeps the default
dropout for it). Corpora default to ../shared/data's Onegin (0.16 MB of text), the book
(0.8 MB) and tinyshakespeare (1.1 MB); `--corpus NAME=PATH` adds others (a folder or a glob
works, as for --text).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPORA = {"onegin": SHARED / "onegin_ru.txt", "book": SHARED / "pg98.txt",
           "shakespeare": SHARED / "tinyshakespeare.txt"}
RECIPES = {
    "auto": [],  # the rule's pick (training/auto.py): the budget and nothing else
    "default": ["--no-auto"],  # today's defaults, trained until the budget ends
    "today": ["--no-auto"],  # what `--time-budget` alone did before auto: 10 epochs at most
    "gru1x256": ["--layers", "1"],
    "rnn1x256": ["--cell", "rnn", "--layers", "1", "--dropout", "0"],
    "gru2x384": ["--hidden", "384", "--dropout", "0.2", "--warmup", "100"],
    "mid-reg": ["--dropout", "0.25"],
    "small-reg": ["--dropout", "0.5", "--locked-dropout", "--weight-drop", "0.3"],
    "shakespeare": ["--preset", "shakespeare"],
    # 10 epochs (the later --epochs wins), of a larger model than the default's
    "wide10": ["--hidden", "384", "--dropout", "0.2", "--warmup", "100", "--epochs", "10"],
    "deep10": ["--layers", "3", "--epochs", "10"],
    # the default's window, batch or learning rate changed, for the whole budget
    "seq100": ["--no-auto", "--seq-len", "100"],
    "batch16": ["--no-auto", "--batch", "16"],
    "lr6e-3": ["--no-auto", "--lr", "6e-3"],
}
STOPPED = ("today", "wide10", "deep10")  # their epochs stop them: a run serves longer budgets
EVALS_PER_RUN = 12
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def seconds(text: str) -> float:
    """A budget as --time-budget reads it ('2m' -> 120.0)."""
    from scratchrnn.store.config import parse_duration  # noqa: PLC0415 (after sys.path is set)

    return parse_duration(text)


def scratchrnn(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scratchrnn", *args], env=env,
                          capture_output=True, text=True, check=False)


def one_run(name: str, text: Path, budget: str, recipe: str, env: dict) -> dict:
    """Train one recipe for one budget on one corpus; its best checkpoint's losses."""
    until = [] if recipe in ("auto", "today") else ["--epochs", "1000000"]  # the budget stops
    flags = ["--text", str(text), "--time-budget", budget, *until, "--sample-length", "0",
             *RECIPES[recipe]]
    with tempfile.TemporaryDirectory(prefix="budget-") as tmp:
        out = Path(tmp) / "run"
        plan = scratchrnn("train", *flags, "--out", str(out), "--dry-run", "--json", env=env)
        if plan.returncode:
            raise SystemExit(f"{name} {recipe} {budget}: {plan.stderr.strip()}")
        planned = json.loads(plan.stdout)
        every = max(25, planned["budget_steps"] // EVALS_PER_RUN)
        t0, load0 = time.perf_counter(), os.getloadavg()[0]
        run = scratchrnn("train", *flags, "--out", str(out), "--eval-every", str(every),
                         "--quiet", env=env)
        wall = time.perf_counter() - t0
        if run.returncode:
            raise SystemExit(f"{name} {recipe} {budget}: {run.stderr.strip()[-300:]}")
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        scores = {}
        for split in ("val", "test"):
            ev = scratchrnn("eval", str(out / "best.npz"), "--split", split, "--json", env=env)
            scores[split] = json.loads(ev.stdout)["nats_per_char"] if not ev.returncode else None
        shutil.rmtree(out, ignore_errors=True)
    return {"corpus": name, "budget": budget, "recipe": recipe, "flags": RECIPES[recipe],
            "planned_steps": planned["budget_steps"], "step_s": planned["step_s"],
            "steps": rows[-1]["step"] if rows else 0, "wall_s": round(wall, 1),
            "train_symbols": planned["train_symbols"], "parameters": planned["parameters"],
            "val": scores["val"], "test": scores["test"],
            "load": [round(load0, 2), round(os.getloadavg()[0], 2)],  # 1-minute, before/after
            "date": time.strftime("%Y-%m-%d %H:%M")}


def merged(rows: list[dict]) -> list[dict]:
    """One row per corpus, budget and recipe: the mean of its repeats' losses, steps and
    measured step cost (`runs` says how many)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["corpus"], r["budget"], r["recipe"]), []).append(r)
    out = []
    for runs in groups.values():
        scored = [r for r in runs if r["val"] is not None] or runs[:1]

        def mean(key, scored=scored):
            values = [r[key] for r in scored if r[key] is not None]
            return sum(values) / len(values) if values else None

        out.append({**scored[0], "val": mean("val"), "test": mean("test"),
                    "steps": round(mean("steps")), "step_s": mean("step_s"),
                    "runs": len(scored)})
    return out


def rule_pick(budget: str, got: dict[str, dict], elsewhere: dict | None = None,
              three: dict | None = None) -> str | None:
    """The recipe training/auto.py's rule picks from the step costs measured in this cell (the
    default's at two layers, gru1x256's at one, deep10's at three; where the cell has no two-
    or three-layer run, that of `elsewhere` or `three`: the text's default or deep10 run at
    another budget): the check of the rule against the search. None: a step cost that decides
    was not measured."""
    from scratchrnn.store.config import TrainConfig  # noqa: PLC0415 (after sys.path is set)
    from scratchrnn.training.auto import EPOCHS_FEW, STEPS_FEW, rule  # noqa: PLC0415

    # the two-layer step cost: the default's, else a regularised two-layer run's (a little
    # slower: weight drop costs time), which can only lower the epochs the rule reads
    d = TrainConfig()  # the recipes keep its batch, window and validation interval
    chars = d.batch * d.seq_len  # a step's
    two = next((got[k] for k in ("default", "mid-reg", "small-reg") if k in got), elsewhere)
    if two is None:
        return None
    timed = {2: two["step_s"]}
    steps = seconds(budget) / timed[2]
    if "gru1x256" in got:
        timed[1] = got["gru1x256"]["step_s"]
    elif steps < STEPS_FEW and steps * chars < EPOCHS_FEW * two["train_symbols"]:
        return None  # the one layer's step cost decides, and it was not measured
    one = got.get("gru1x256", two)["parameters"]
    parameters = {2: two["parameters"], 1: one}
    three = got.get("deep10", three)
    # unmeasured, a third layer is timed as fast as two (it is slower) and counted with a
    # layer's parameters more: if even so the rule leaves it, it leaves the real one too
    timed[3] = three["step_s"] if three else timed[2]
    parameters[3] = three["parameters"] if three else 2 * parameters[2] - one
    layers, strong, stop, *_ = rule(seconds(budget), two["train_symbols"], chars, timed, 0.0,
                                    d.eval_every, parameters=parameters)
    if layers == 3:
        return "deep10" if three else None
    return ("gru1x256" if layers == 1 else "small-reg" if strong else
            "today" if stop else "default")


def other_budget(rows: list[dict], corpus: str, recipe: str = "default") -> dict | None:
    """A `recipe` run of `corpus` at any budget: its step cost and size, for a cell without."""
    return next((r for r in rows if (r["corpus"], r["recipe"]) == (corpus, recipe)), None)


def stopped_within(rows: list[dict], corpus: str, budget: str, recipe: str) -> dict | None:
    """A `recipe` run of `corpus` that its epochs stopped within `budget`, at whatever budget
    it was made: the run `recipe` makes given this one too."""
    return next((r for r in rows if (r["corpus"], r["recipe"]) == (corpus, recipe)
                 and r["val"] is not None and r["wall_s"] < seconds(budget)
                 and r["steps"] < r["planned_steps"]), None)


def today_of(rows: list[dict], corpus: str, budget: str, default: dict | None) -> dict | None:
    """What `--time-budget` alone did before auto, where no `today` run of this budget was
    made: a `today` run that its 10 epochs stopped within this budget, or the default
    recipe's run when the budget stops it before 10 epochs come (the same run)."""
    from scratchrnn.store.config import TrainConfig  # noqa: PLC0415 (after sys.path is set)

    stopped = stopped_within(rows, corpus, budget, "today")
    if stopped:
        return stopped
    d = TrainConfig()  # today's: its batch, window and epochs
    if default and default["steps"] * d.batch * d.seq_len < d.epochs * default["train_symbols"]:
        return default
    return None


def cell(rows: list[dict], corpus: str, budget: str) -> dict[str, dict]:
    """The scored runs of one corpus and budget by recipe, with `today` (today_of) and the
    runs of other budgets that their epochs stopped within this one (STOPPED) where this
    budget has none of its own."""
    got = {r["recipe"]: r for r in rows if (r["corpus"], r["budget"]) == (corpus, budget)
           and r["val"] is not None}
    for recipe in STOPPED:
        run = got.get(recipe) or stopped_within(rows, corpus, budget, recipe)
        if recipe == "today" and run is None:
            run = today_of(rows, corpus, budget, got.get("default"))
        if run:
            got[recipe] = run
    return got


def table(rows: list[dict]) -> str:
    names = [k for k in RECIPES if any(r["recipe"] == k for r in rows)]
    lines = ["| corpus | budget | " + " | ".join(names) + " | best searched | rule's pick | "
             "pick - best | pick - today |", "|---|---|" + "---|" * (len(names) + 4)]
    keys = sorted({(r["corpus"], r["budget"]) for r in rows},
                  key=lambda k: (k[0], seconds(k[1])))
    for corpus, budget in keys:
        got = cell(rows, corpus, budget)
        today = got.get("today")
        cells = [f"{got[k]['val']:.4f} ({got[k]['steps']:,}"
                 + (f", {got[k]['runs']} runs)" if got[k].get("runs", 1) > 1 else ")")
                 if k in got else "" for k in names]
        if "today" in names and today is not None and today is got.get("default"):
            cells[names.index("today")] = "= default"  # the budget stopped it: the same run
        best = min(got, key=lambda k: got[k]["val"]) if got else None
        pick = rule_pick(budget, got, other_budget(rows, corpus),
                         other_budget(rows, corpus, "deep10"))
        gap = (f"{got[pick]['val'] - got[best]['val']:+.4f}" if pick in got else
               "not measured" if pick else "")
        vs_today = (f"{got[pick]['val'] - today['val']:+.4f}" if pick in got and today else "")
        lines.append(f"| {corpus} | {budget} | " + " | ".join(cells) +
                     f" | {best or ''} | {pick or ''} | {gap} | {vs_today} |")
    return "\n".join(lines)


def fit(rows: list[dict], corpora: dict[str, Path]) -> str:
    """training/auto.py's EXPECTED, measured: per budget, the least-squares line from each
    corpus's trigram loss (auto.trigram_loss on its validation split) to the validation loss
    of the rule's pick, and the half range: its largest miss plus auto.MARGIN."""
    import numpy as np  # noqa: PLC0415

    from scratchrnn.data.corpus import load_corpus  # noqa: PLC0415
    from scratchrnn.training.auto import MARGIN, trigram_loss  # noqa: PLC0415

    trigram = {}
    for name, path in corpora.items():
        corpus = load_corpus(str(path), "auto", 0.05, 0.05, None)
        trigram[name] = trigram_loss(corpus.train, corpus.val)
    out = []
    for budget in sorted({r["budget"] for r in rows}, key=seconds):
        points = []
        for name in trigram:
            got = cell(rows, name, budget)
            pick = rule_pick(budget, got, other_budget(rows, name),
                             other_budget(rows, name, "deep10"))
            if pick in got:
                points.append((trigram[name], got[pick]["val"], name))
        if len(points) < 2:
            continue
        x, y = np.array([p[0] for p in points]), np.array([p[1] for p in points])
        slope, intercept = np.polyfit(x, y, 1)
        miss = np.abs(slope * x + intercept - y).max()
        out.append(f"    {seconds(budget):.1f}: ({slope:.4f}, {intercept:.4f}, "
                   f"{miss + MARGIN:.4f}),  # " + ", ".join(
                       f"{n} {a:.3f} -> {b:.4f}" for a, b, n in points))
    return "EXPECTED = {\n" + "\n".join(out) + "\n}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", nargs="+", default=["2m"], help="e.g. 2m 10m 30m")
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--corpus", nargs="*", default=[], metavar="NAME=PATH",
                    help="corpora beyond (or, with --only, instead of) the shared three")
    ap.add_argument("--only", action="store_true", help="only the --corpus ones")
    ap.add_argument("--out", default="budget_table.jsonl", help="results, one JSON line a run")
    ap.add_argument("--table", nargs="*", metavar="JSONL",
                    help="print the table of these results files and train nothing")
    args = ap.parse_args()
    corpora = {} if args.only else {k: v for k, v in CORPORA.items() if v.exists()}
    corpora |= {c.split("=", 1)[0]: Path(c.split("=", 1)[1]) for c in args.corpus}
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH")]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    out = Path(args.out)
    if args.table is not None:
        rows = merged([json.loads(line) for f in args.table
                       for line in Path(f).read_text().splitlines()])
        print(table(rows))
        print(fit(rows, corpora))
        return
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    done = {(r["corpus"], r["budget"], r["recipe"]) for r in rows}
    for budget in args.budgets:
        for name, text in corpora.items():
            for recipe in args.recipes:
                if (name, budget, recipe) in done:
                    continue
                row = one_run(name, text, budget, recipe, env)
                print(json.dumps(row), flush=True)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
    print(table(rows))


if __name__ == "__main__":
    main()

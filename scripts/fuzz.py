"""The property tests (cleaner, decoder, prompt encoder, vocabulary, checkpoint loader and
mutations of real checkpoints) with a large example budget, and the SIGKILL loop with many
kills. Not part of CI: minutes to hours.

    python scripts/fuzz.py --examples 20000 --kills 200
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ("test_clean_any_bytes or test_clean_any_text or test_vocab_round_trip or "
        "test_prompt_encoder or test_checkpoint_loader_refuses or test_decoder_never or "
        "test_fuzz_every_metadata_field or test_fuzz_every_member or test_fuzz_bytes or "
        "test_sweep_every_field")

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--examples", type=int, default=20000)
ap.add_argument("--kills", type=int, default=200)
args = ap.parse_args()
env = dict(os.environ, SCRATCHRNN_FUZZ=str(args.examples), SCRATCHRNN_KILLS=str(args.kills),
           SCRATCHRNN_SWEEP="1")
tests = [str(ROOT / "tests" / f)
         for f in ("test_text.py", "test_reliability.py", "test_checkpoint_schema.py")]
sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", *tests, "-k",
                          f"{FUZZ} or test_sigkill", "--hypothesis-show-statistics"],
                         env=env, cwd=ROOT))

"""python -m ncutils.bench {train,metrics,estimate} [options]"""
import importlib
import sys

BENCHES = {"train": "training step vs a plain fp32 DataLoader loop",
           "metrics": "streaming metrics engine vs naive dense computation",
           "estimate": "cost estimate vs measured time: stored runs, and a chapter computed from nothing"}

if len(sys.argv) < 2 or sys.argv[1] not in BENCHES:
    print(__doc__ + "\n" + "\n".join(f"  {k:8s} {v}" for k, v in BENCHES.items()))
    sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
importlib.import_module(f"ncutils.bench.{sys.argv[1]}").main(sys.argv[2:])

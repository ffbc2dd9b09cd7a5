"""``python -m ncutils.labs``: the students' notebooks (``student``), the shipped weights (``weights``), the labs (``list``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import NOTEBOOKS, lab_names
from .student import write_student_versions
from .weights import MANIFEST, WEIGHTS, export_weights

STUDENT = NOTEBOOKS / "student"  # the default output folder (git-ignored)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m ncutils.labs", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="write every lab's student version (solutions replaced by stubs)")
    s.add_argument("out_dir", nargs="?", type=Path, default=STUDENT, help=f"default: {STUDENT}")
    w = sub.add_parser("weights", help=f"re-export the shipped weights and {MANIFEST} from the runs' checkpoints")
    w.add_argument("--out", type=Path, default=WEIGHTS, help=f"default: {WEIGHTS}")
    sub.add_parser("list", help="the labs of the book, in order")
    a = p.parse_args(argv)
    if a.command == "student":
        for path in write_student_versions(a.out_dir, [NOTEBOOKS / f"{name}.md" for name in lab_names()]):
            print(path)
    elif a.command == "weights":
        try:
            shipped = export_weights(out=a.out)
        except (FileNotFoundError, ValueError) as e:
            sys.exit(f"weights not exported: {e}")
        for name, run in shipped.items():
            print(f"{a.out / name}: run {run['key']} (training key {run['training_key']}, {run['checkpoint']})")
    else:
        print("\n".join(lab_names()))


if __name__ == "__main__":
    main()

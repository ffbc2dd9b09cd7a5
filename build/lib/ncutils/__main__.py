"""``python -m ncutils``: the command line (:mod:`ncutils.cli`)."""
from .cli import main

main()

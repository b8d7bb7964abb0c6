"""`python -m dcomc` runs the command line."""

from dcomc.cli import main

main()

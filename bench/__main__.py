"""`python -m bench`: see bench.main."""

import sys

from bench.main import main

main(sys.argv[1:])

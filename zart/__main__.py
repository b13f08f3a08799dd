"""`python -m zart` runs the CLI."""

from zart.cli import main

main()

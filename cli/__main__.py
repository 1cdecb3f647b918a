"""`python -m callqa.cli`: the same as the `callqa` console script."""

from callqa.cli import main

main()

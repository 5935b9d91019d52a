"""``python -m lstmforge``: the same command line as the ``lstmforge`` script."""

from lstmforge.cli import main

if __name__ == "__main__":
    main()

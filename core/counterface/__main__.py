"""python -m counterface: the same as the counterface command."""

from .cli import main

if __name__ == "__main__":
    main()

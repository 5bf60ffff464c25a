"""`python -m hub` runs the command line."""

from hub.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

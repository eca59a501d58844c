"""`python -m ganforge.cli`: the `ganforge` command."""

from ganforge.cli import app

if __name__ == "__main__":
    app()

"""``python -m chronorec``: the same command line as ``chronorec``."""

from chronorec.cli import app

if __name__ == "__main__":
    app(prog_name="chronorec")

"""`python -m cxrbench` is the `cxrbench` command."""

from .cli import app

app(prog_name="cxrbench")

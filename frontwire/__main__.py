"""`python -m frontwire …` is the `frontwire` command (background jobs start it with the server's interpreter)."""

from frontwire.cli import app

app(prog_name="frontwire")

"""`python -m app` is the `tracewire` command."""

from app.cli import main

main()

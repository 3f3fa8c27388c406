"""The ``tracker`` command's subcommands, one module per concern; ``services/tracker/cli.py``
puts them together."""

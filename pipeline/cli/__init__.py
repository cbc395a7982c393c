"""`tfxp`, the command line: `main` and one module per command group."""

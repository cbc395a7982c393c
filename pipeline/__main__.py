"""`python -m pipeline`: the same as `tfxp`."""
from pipeline.cli.main import tfxp

tfxp()

"""`python -m pipeline`: the same as `tfxp`."""
import sys

from pipeline.cli.main import main

sys.exit(main())

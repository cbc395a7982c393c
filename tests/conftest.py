import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# One store of real runs shared by the lineage and notebook tests (session scope
# holds only for a fixture defined here, not one imported into each module).
from tests.lineage_runs import lineage_runs  # noqa: E402,F401

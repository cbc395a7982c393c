"""Reading runs back from ML Metadata: the runs, a model's lineage, diffs and reports.

`store` is the one reader (every store is opened there); `runs`, `trace`,
`results` and `provenance` build on it; `render`, `html`, `report` and `diff`
turn what they read into text, graphs and pages.  Nothing here runs a pipeline.

    from pipeline.lineage import open_store_from
    store = open_store_from("runs/chicago-taxi")
    store.runs(); store.trace()   # every run; where the served model came from
"""
from pipeline.lineage.store import Store, open_store_from

__all__ = ["Store", "open_store_from"]

"""The pipeline on this machine: Beam in process, SQLite ML Metadata under a run root."""

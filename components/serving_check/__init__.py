"""Calls the candidate model the way TF Serving will, before it is pushed."""

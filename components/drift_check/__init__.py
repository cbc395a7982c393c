"""Compares this run's statistics with those that trained the served model."""

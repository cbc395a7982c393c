"""Stops a run before Transform when ExampleValidator found anomalies."""

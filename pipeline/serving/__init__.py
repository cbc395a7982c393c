"""After the push: the served versions and their labels, warm-up requests,
batch predictions and watching a served model decay."""

"""Custom TFX components, one package each (spec, executor, tests)."""
import os

# TFX 1.16's Trainer and TFMA are written against Keras 2 (tf-keras); TF 2.16
# defaults to Keras 3.  This must be set before TensorFlow is first imported.
os.environ["TF_USE_LEGACY_KERAS"] = "1"

"""Tests of kubeflow."""

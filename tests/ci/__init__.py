"""Tests of the CI/CD workflows."""

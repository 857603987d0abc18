"""Offline training package: MNIST in, exported SavedModels (plus metadata and report) out."""

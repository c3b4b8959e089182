"""A tiny Hydra app and helpers for the sweeper tests."""

"""Placeholder: replaced by the zoo's `train` command."""

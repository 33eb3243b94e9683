"""Experiments as configuration: YAML files planned, run resumably into a JSONL store, swept and reported."""

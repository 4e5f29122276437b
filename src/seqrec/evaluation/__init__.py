"""Ranking evaluation: metrics are functions of ranks; protocols decide candidates and targets."""

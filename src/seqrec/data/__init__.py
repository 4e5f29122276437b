"""Data pipeline: readers -> Interactions + IdMaps -> split -> windows -> batches with negatives."""

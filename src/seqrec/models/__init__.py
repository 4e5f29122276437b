"""Models: each module declares a ModelSpec (seqrec.models.base); seqrec.models.registry lists them.

This package imports nothing on its own, so code that needs only the model protocol (training,
evaluation) does not load every model.
"""

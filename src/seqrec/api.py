"""The Python surface the CLI, the service and scripts use: resolve settings, load data, train,
write a run folder, load a bundle, recommend."""

from seqrec.bundle import load_bundle
from seqrec.data.catalog import data_source, load_dataset
from seqrec.pipeline import interrupted, run, train
from seqrec.recommend import recommend
from seqrec.runs import TrainResult, write_run
from seqrec.settings import resolve_run_config

__all__ = ["TrainResult", "data_source", "interrupted", "load_bundle", "load_dataset", "recommend",
           "resolve_run_config", "run", "train", "write_run"]

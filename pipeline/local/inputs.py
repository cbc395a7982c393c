"""What a local run reads, checked on this machine before anything runs.

`create_pipeline` takes its sources as given (`pipeline.pipeline.Sources`);
here the local runner finds them: the data file or directory must exist, the
curated schema too, and a multi-class label's classes are read from it.
"""
from __future__ import annotations

import os
from typing import Optional

from tfx.proto import example_gen_pb2

from pipeline.config import PipelineConfig
from pipeline.dag.schema import num_label_classes
from pipeline.errors import ConfigError
from pipeline.pipeline import Sources, example_gen_input, split_data_path


def local_data(cfg: PipelineConfig, data_path: Optional[str] = None) -> tuple[str, str]:
    """(input_base, pattern) of the data on this machine; ConfigError if it is not there."""
    path = cfg.resolve(data_path or cfg.data.path)
    if "://" in path:
        return split_data_path(path, cfg.data.pattern, is_dir=True)
    if not os.path.exists(path):
        raise ConfigError(f"data path not found: {path}")
    return split_data_path(path, cfg.data.pattern, is_dir=os.path.isdir(path))


def local_sources(cfg: PipelineConfig, data_path: Optional[str] = None,
                  schema_path: Optional[str] = None) -> Sources:
    """The run's data and curated schema, checked here; the label's classes read."""
    schema_file = schema_path or cfg.schema_path
    if "://" not in schema_file and not os.path.exists(schema_file):
        raise ConfigError(
            f"schema file not found: {schema_file}\n"
            f"Draft one from the data with: tfxp schema --output {schema_file}")
    base, pattern = local_data(cfg, data_path)
    return Sources(base, pattern, schema_file, num_label_classes(cfg, schema_file),
                   given_data_path=cfg.resolve(data_path or cfg.data.path))  # the card's


def local_data_sources(cfg: PipelineConfig, data_path: Optional[str] = None) -> Sources:
    """The data alone, checked here: what drafting a schema reads (no schema yet)."""
    base, pattern = local_data(cfg, data_path)
    return Sources(base, pattern, schema_file="", given_data_path=data_path)


def local_example_gen_input(cfg: PipelineConfig, data_path: Optional[str] = None
                            ) -> tuple[str, example_gen_pb2.Input]:
    """ExampleGen's input for the data on this machine."""
    return example_gen_input(local_data_sources(cfg, data_path))

"""Every private name of TFX the Kubeflow side uses, checked before it is used.

The compiler swaps a Resolver's strategy (Resolver has no setter) and the
container entrypoint parses TFX's driver and executor command lines with their
own `_parse_flags`; the compiler's tests read a launcher's artifact as TFX's
entrypoint does. They reach those names only through this module, so an
upgrade of TFX has one place to read. The Resolver is checked when this module
loads; the functions, whose modules import TFMA and Beam, when first used. A
name that is gone or has another shape raises `TfxChanged`, naming the name,
the TFX installed and the one pinned.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from tfx import version as tfx_version
from tfx.dsl.components.common import resolver

from pipeline.errors import TfxpError

# The TFX these names were read from (requirements.lock pins it).
PINNED_VERSION = "1.16.0"

# The Resolver's attribute its exec_properties (what TFX's KFP v2 step builder
# reads) report as its strategy.
_STRATEGY = "_strategy_class"
_PARSER = "_parse_flags"
_DRIVER = "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"
_EXECUTOR = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
_ENTRYPOINT_UTILS = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_entrypoint_utils"


class TfxChanged(TfxpError, ImportError):
    """A private name of TFX is gone or has another shape than the pinned TFX's."""

    what = "TFX changed"


def _changed(what: str) -> TfxChanged:
    return TfxChanged(
        f"TFX {tfx_version.__version__} installed: {what}; pipeline/kubeflow/tfx_internals.py "
        f"was written against TFX {PINNED_VERSION} (requirements.lock): re-read the names "
        "it lists")


def _check_resolver() -> None:
    """A Resolver keeps its strategy in `_strategy_class`, and reports that."""
    from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import (
        LatestArtifactStrategy,
    )
    from tfx.types import channel, standard_artifacts

    node = resolver.Resolver(strategy_class=LatestArtifactStrategy,
                             model=channel.Channel(type=standard_artifacts.Model))
    if getattr(node, _STRATEGY, None) is not LatestArtifactStrategy:
        raise _changed(f"Resolver.{_STRATEGY}: not where a Resolver keeps its strategy")
    if node.exec_properties.get(resolver.RESOLVER_STRATEGY_CLASS) is not LatestArtifactStrategy:
        raise _changed("Resolver.exec_properties: no longer reports its strategy class")


_check_resolver()


def set_resolver_strategy(node: resolver.Resolver, strategy_class: type) -> None:
    """Replaces a Resolver's strategy (what its exec_properties, and so TFX's
    KFP v2 step builder, report)."""
    setattr(node, _STRATEGY, strategy_class)


def _function(module_name: str, name: str, *parameters: str) -> Callable[..., Any]:
    """A private function of a TFX module, checked to take exactly `parameters`."""
    import importlib

    function = getattr(importlib.import_module(module_name), name, None)
    if not callable(function):
        raise _changed(f"{module_name}.{name}: no such function")
    if list(inspect.signature(function).parameters) != list(parameters):
        raise _changed(f"{module_name}.{name}: takes other parameters than "
                       f"({', '.join(parameters)})")
    return function


def _parser(module_name: str) -> Callable[[list[str]], Any]:
    return _function(module_name, _PARSER, "argv")


def parse_driver_flags(argv: list[str]) -> Any:
    """TFX's file-based ExampleGen driver's own parse of its command line."""
    return _parser(_DRIVER)(argv)


def parse_executor_flags(argv: list[str]) -> Any:
    """TFX's KFP v2 executor entrypoint's own parse of its command line."""
    return _parser(_EXECUTOR)(argv)


def parse_raw_artifact(artifact: Any, name_from_id: dict[int, str]) -> Any:
    """The TFX artifact TFX's KFP v2 entrypoint makes of a launcher's RuntimeArtifact."""
    return _function(_ENTRYPOINT_UTILS, "_parse_raw_artifact", "artifact_pb", "name_from_id")(
        artifact, name_from_id)

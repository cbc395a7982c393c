"""The model card a pushed version carries, read back, and what its model was
trained with. The card is written at push time by `pipeline.facts.model_card`
(the Pusher's `stage_fn`): the writer lives apart from the readers here."""
from __future__ import annotations

from typing import Any, Optional

from pipeline.facts.model_card import card_paths as card_paths
from pipeline.facts.model_card import recorded_training


def trained_with(model_uri: Optional[str]) -> Optional[dict[str, Any]]:
    """What a Trainer's Model artifact was trained with ({"tuned", "values"}), if recorded."""
    if not model_uri:
        return None
    from tfx.utils import path_utils
    return recorded_training(path_utils.serving_model_path(model_uri))

"""AtomicPusher: TFX's Pusher with an executor that publishes atomically."""
from tfx.components import Pusher
from tfx.dsl.components.base import executor_spec

from components.atomic_pusher.executor import Executor


class AtomicPusher(Pusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

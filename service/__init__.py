"""FlexLive runtime: face stage, inference engine, REST API, camera daemon, settings,
metrics and the ``liveness`` CLI. Never imports torch."""

__version__ = "0.1.0"

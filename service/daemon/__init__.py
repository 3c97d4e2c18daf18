"""The live camera daemon: capture → bounded queue → liveness pipeline → per-face tracks
with temporal aggregation → outputs (stdout, JSONL, webhook), with its own health,
metrics and live preview HTTP server. ``liveness daemon`` runs it (:mod:`.command`)."""

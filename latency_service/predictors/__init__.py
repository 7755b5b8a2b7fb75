"""Per-layer runtime models: fit, store as versioned JSON, compile, predict."""

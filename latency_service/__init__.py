"""The latency service: measurement store, predictors and the HTTP API."""

"""Stored network predictions: what each predictor version predicted for measured networks."""

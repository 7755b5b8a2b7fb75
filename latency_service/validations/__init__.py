"""Validation reports: a predictor version against networks measured end to end."""

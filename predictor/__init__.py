"""The runtime model as pure code: artifacts, compiling, fitting, table formats, accuracy.

No FastAPI, SQLAlchemy or HTTP here. The service stores and serves what this package
computes; a search can load an artifact (``GET /v1/devices/{id}/predictors/{version}``) and
predict in its own process with :class:`predictor.local.LocalPredictor`.
"""

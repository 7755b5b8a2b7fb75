"""Exporters: layer variants and whole networks to TFLite (Keras) and ONNX (torch), cached.

A TFLite network is assembled from its layers' cached files (:mod:`models.export.assemble`)
unless ``method="convert"`` asks for the whole network through the converter.
Nothing heavy is imported here; TensorFlow and torch load only in the process that converts.
"""

from models.export.api import export_keys, export_layer, export_network, export_spec
from models.export.cache import CACHE_ENV, artifact_path, cache_root
from models.export.converters import ConversionError
from models.export.parallel import export_specs, export_variants
from models.export.spec import EXPORTER_VERSION, ExportFormat, ExportMethod, ExportSpec
from models.precision import Precision

__all__ = [
    "CACHE_ENV",
    "EXPORTER_VERSION",
    "ConversionError",
    "ExportFormat",
    "ExportMethod",
    "ExportSpec",
    "Precision",
    "artifact_path",
    "cache_root",
    "export_keys",
    "export_layer",
    "export_network",
    "export_spec",
    "export_specs",
    "export_variants",
]

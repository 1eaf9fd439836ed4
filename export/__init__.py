"""Export keras-mlp models to TFLite in every quantisation mode, gated for parity, with deployment metadata.

Library first: `to_tflite` converts, `check_parity` gates, `export_model` does the whole job (all modes, gate,
report, sidecars, metadata) for the CLI (`keras-mlp-export`) and the training main job.
"""
from export.convert import MODES, ExportError, op_histogram, to_tflite
from export.parity import DEFAULT_THRESHOLDS, ParityReport, check_parity, float32_roundtrip, run_tflite
from export.pipeline import export_model

__all__ = ["DEFAULT_THRESHOLDS", "ExportError", "MODES", "ParityReport", "check_parity", "export_model",
           "float32_roundtrip", "op_histogram", "run_tflite", "to_tflite"]

"""Export keras-mlp models to TFLite (LiteRT) in every quantisation mode, gated for parity, with deployment metadata.

This package's own import is pure Python (errors and modes), so `import export.litert` (NumPy + ai_edge_litert)
and `keras-mlp-export --help` never load TensorFlow. Import the rest from its module:

    from export.pipeline import export_model      # every mode, gate, report, sidecars, metadata (CLI, main job)
    from export.options import ExportOptions      # what export_model and gate_file take
    from export.gate import gate_file             # the same gate on an existing .tflite (--gate)
    from export.convert import to_tflite          # one conversion
    from export.parity import check_parity        # the gate of one flatbuffer (thresholds: DEFAULT_THRESHOLDS)
    from export import litert                     # load / run / time a .tflite, list its ops

See export/README.md for the gate and its thresholds.
"""
from export.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_REJECTED, ExportError
from export.modes import MODES

__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_REJECTED", "ExportError", "MODES"]

"""gMLP checkpoint layout: timm `MlpMixer` with `SpatialGatingBlock` (`stem.proj`, `blocks.i.norm`,
`blocks.i.mlp_channels.{fc1,gate.norm,gate.proj,fc2}`, `norm`, `head`).
"""
from __future__ import annotations

from keras_mlp.models.keymap import Layout, Spec, torch_conv, torch_linear, torch_norm


def timm_spec(num_blocks: int) -> Spec:
    spec = torch_conv("stem/proj", "stem.proj")
    for i in range(num_blocks):
        src, dst = f"blocks.{i}", f"GMLPBlock_{i}"
        spec |= torch_norm(f"{dst}/norm", f"{src}.norm")
        spec |= torch_linear(f"{dst}/fc1", f"{src}.mlp_channels.fc1")
        spec |= torch_norm(f"{dst}/gate/norm", f"{src}.mlp_channels.gate.norm")
        spec |= torch_linear(f"{dst}/gate/proj/fc", f"{src}.mlp_channels.gate.proj")
        spec |= torch_linear(f"{dst}/fc2", f"{src}.mlp_channels.fc2")
    return spec | torch_norm("norm", "norm") | torch_linear("head", "head")


LAYOUTS = (
    Layout("timm gMLP", "timm", "gmlp", "blocks.0.mlp_channels.gate.proj.weight", r"blocks\.(\d+)\.",
           ("head.weight", "head.bias"), 0, ("blocks.0.mlp_channels.gate.proj.weight", 1, 0), timm_spec),
)

"""Checkpoint key maps: how a published layout's keys and array layouts become this zoo's Keras weights.

A `Layout` names one published key layout of one family (timm, the official Flax `.npz`, deit, ...). Its
`spec(num_blocks)` maps every Keras weight path (`model.weights[i].path`, e.g. `MixerBlock_0/norm1/gamma`) to the
source keys it is made from and the function that makes it. PyTorch `Linear` weights are (out, in) and Keras
`Dense` kernels (in, out); PyTorch `Conv2d` weights are (out, in, kh, kw) and Keras `Conv2D` kernels
(kh, kw, in, out). The loader (`keras_mlp.checkpoints`) checks the map against both sides before assigning.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

Spec = dict[str, tuple[tuple[str, ...], Callable[..., np.ndarray]]]


def same(x: np.ndarray) -> np.ndarray:
    return x


def flat(x: np.ndarray) -> np.ndarray:
    """timm's Affine stores α, β as (1, 1, C); Keras as (C,)."""
    return x.reshape(-1)


def torch_linear(dst: str, src: str) -> Spec:
    return {f"{dst}/kernel": ((f"{src}.weight",), np.transpose), f"{dst}/bias": ((f"{src}.bias",), same)}


def torch_norm(dst: str, src: str) -> Spec:
    return {f"{dst}/gamma": ((f"{src}.weight",), same), f"{dst}/beta": ((f"{src}.bias",), same)}


def torch_affine(dst: str, src: str) -> Spec:
    return {f"{dst}/alpha": ((f"{src}.alpha",), flat), f"{dst}/beta": ((f"{src}.beta",), flat)}


def torch_mlp(dst: str, src: str) -> Spec:
    return {**torch_linear(f"{dst}/fc1", f"{src}.fc1"), **torch_linear(f"{dst}/fc2", f"{src}.fc2")}


def torch_conv(dst: str, src: str) -> Spec:
    return {f"{dst}/kernel": ((f"{src}.weight",), lambda w: np.transpose(w, (2, 3, 1, 0))),
            f"{dst}/bias": ((f"{src}.bias",), same)}


def flax_dense(dst: str, src: str) -> Spec:
    return {f"{dst}/kernel": ((f"{src}/kernel",), same), f"{dst}/bias": ((f"{src}/bias",), same)}


def flax_norm(dst: str, src: str) -> Spec:
    return {f"{dst}/gamma": ((f"{src}/scale",), same), f"{dst}/beta": ((f"{src}/bias",), same)}


@dataclasses.dataclass(frozen=True)
class Layout:
    """One published key layout of one family.

    Attributes:
        name: str. Where the layout comes from (shown in messages).
        block: str. The family's block name (`MLPTrunk.block`: "mixer", "resmlp", "gmlp", "ff").
        marker: str. A key only this layout has; it identifies the layout.
        block_pattern: str. Regex with one group, the block index, to count blocks.
        head: tuple[str, str]. Keys of the classifier weight and bias.
        classes_axis: int. Axis of the head weight that counts classes.
        tokens: (str, int, int). Key, axis and offset giving the patch-token count (offset: class token).
        spec: callable. `spec(num_blocks) -> Spec`, Keras weight path → (source keys, converter).
        pos_grid: callable or None. `pos_grid(state) -> (h, w)`, the grid the position embedding is stored on.
        build_args: ((str, value), ...). Constructor arguments the weights were trained with (e.g. timm's exact
            GELU for Mixer), used by `create_model(weights=...)` unless overridden.
    """

    name: str
    block: str
    marker: str
    block_pattern: str
    head: tuple[str, str]
    classes_axis: int
    tokens: tuple[str, int, int]
    spec: Callable[[int], Spec]
    pos_grid: Callable[[dict], tuple[int, int]] | None = None
    build_args: tuple = ()

    def matches(self, state: dict) -> bool:
        return self.marker in state

    def num_blocks(self, state: dict) -> int:
        found = {int(m.group(1)) for k in state if (m := re.match(self.block_pattern, k))}
        return max(found) + 1 if found else 0

    def num_classes(self, state: dict) -> int | None:
        return int(state[self.head[0]].shape[self.classes_axis]) if self.head[0] in state else None

    def num_tokens(self, state: dict) -> int:
        key, axis, offset = self.tokens
        return int(state[key].shape[axis]) - offset

"""Checkpoint key maps, written once and used both ways: a published layout's keys and array layouts to this zoo's
Keras weights (loading) and back (`keras_mlp.save_checkpoint`).

A `Layout` names one published key layout of one family (timm, the official Flax `.npz`, deit, ...). Its
`spec(num_blocks)` maps every Keras weight path (`model.weights[i].path`, e.g. `MixerBlock_0/norm1/gamma`) to the
source keys it is made from and the `Convert` between the two. PyTorch `Linear` weights are (out, in) and Keras
`Dense` kernels (in, out); PyTorch `Conv2d` weights are (out, in, kh, kw) and Keras `Conv2D` kernels
(kh, kw, in, out). The loader (`keras_mlp.weights.loading`) checks the map against both sides before assigning.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Convert:
    """One weight conversion, both ways. Calling it loads.

    Attributes:
        load: callable. `load(*stored) -> value`: the stored arrays (in the spec's key order) to the Keras value.
        save: callable. `save(value, grid) -> stored arrays`, its inverse; `grid` is the patch grid the model's
            position embedding is stored on (only the feed-forward-only ViT's split uses it).
    """

    load: Callable[..., np.ndarray]
    save: Callable[[np.ndarray, tuple[int, int]], tuple[np.ndarray, ...]]

    def __call__(self, *stored: np.ndarray) -> np.ndarray:
        return self.load(*stored)


Spec = dict[str, tuple[tuple[str, ...], Convert]]


def one(load: Callable[[np.ndarray], np.ndarray], inverse: Callable[[np.ndarray], np.ndarray]) -> Convert:
    """A conversion of one stored array into one Keras value."""
    return Convert(load, lambda value, grid: (inverse(value),))


same = one(lambda x: x, lambda x: x)
transpose = one(np.transpose, np.transpose)  # (out, in) <-> (in, out): its own inverse


def flat(stored: tuple[int, ...]) -> Convert:
    """Keras keeps α, β as (C,); timm's Affine stores them as (1, 1, C), deit's as (C,)."""
    return one(lambda x: x.reshape(-1), lambda x: x.reshape(stored))


def permute(axes: tuple[int, ...]) -> Convert:
    """Axes reordered on load, by the inverse permutation on save."""
    inverse = tuple(int(i) for i in np.argsort(axes))
    return one(lambda x: np.transpose(x, axes), lambda x: np.transpose(x, inverse))


def torch_linear(dst: str, src: str) -> Spec:
    return {f"{dst}/kernel": ((f"{src}.weight",), transpose), f"{dst}/bias": ((f"{src}.bias",), same)}


def torch_norm(dst: str, src: str) -> Spec:
    return {f"{dst}/gamma": ((f"{src}.weight",), same), f"{dst}/beta": ((f"{src}.bias",), same)}


def torch_affine(dst: str, src: str, stored: tuple[int, ...]) -> Spec:
    return {f"{dst}/alpha": ((f"{src}.alpha",), flat(stored)), f"{dst}/beta": ((f"{src}.beta",), flat(stored))}


def torch_mlp(dst: str, src: str) -> Spec:
    return {**torch_linear(f"{dst}/fc1", f"{src}.fc1"), **torch_linear(f"{dst}/fc2", f"{src}.fc2")}


def torch_conv(dst: str, src: str) -> Spec:
    return {f"{dst}/kernel": ((f"{src}.weight",), permute((2, 3, 1, 0))), f"{dst}/bias": ((f"{src}.bias",), same)}


def flax_dense(dst: str, src: str) -> Spec:
    return {f"{dst}/kernel": ((f"{src}/kernel",), same), f"{dst}/bias": ((f"{src}/bias",), same)}


def flax_norm(dst: str, src: str) -> Spec:
    return {f"{dst}/gamma": ((f"{src}/scale",), same), f"{dst}/beta": ((f"{src}/bias",), same)}


@dataclasses.dataclass(frozen=True)
class Layout:
    """One published key layout of one family.

    Attributes:
        name: str. Where the layout comes from (shown in messages).
        tag: str. Its short name in `keras_mlp.save_checkpoint(..., layout=tag)` ("timm", "flax", "deit", ...).
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
        suffix: str. The file type `save_checkpoint` writes it as (".npz" for Flax, else ".safetensors").
    """

    name: str
    tag: str
    block: str
    marker: str
    block_pattern: str
    head: tuple[str, str]
    classes_axis: int
    tokens: tuple[str, int, int]
    spec: Callable[[int], Spec]
    pos_grid: Callable[[dict], tuple[int, int]] | None = None
    build_args: tuple = ()
    suffix: str = ".safetensors"

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

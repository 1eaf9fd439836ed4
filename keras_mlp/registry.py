"""The variant registry: every paper variant as a small table of constructor arguments plus what a user needs
beside the architecture (parameter count, preprocessing, classifier layer, weight sources).

`create_model(name, **overrides)` builds one (overrides win); `list_models()` lists the names. The test suite
runs its whole battery over this registry.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
from typing import Any

import numpy as np

from keras_mlp.models import GMLP, FeedForwardViT, MLPMixer, MLPTrunk, ResMLP

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")


def center_crop(images, image_size, crop_pct: float = 0.875, interpolation: str = "bicubic"):
    """Evaluation resize and centre crop of (H, W, C) or (B, H, W, C) images with values 0..255, as timm's
    `transforms_imagenet_eval` (Resize(floor(size / crop_pct)) then CenterCrop(size), torchvision's rounding).

    The shorter side becomes floor(max(image_size) / crop_pct), the longer side keeps the aspect ratio (floored),
    then the centre `image_size` is cut out (offset rounded half to even, as torchvision). TensorFlow ops only,
    so it runs eagerly and inside `tf.data.Dataset.map`.

    Args:
        images: (H, W, C) or (B, H, W, C) array or tensor, values 0..255.
        image_size: int or (int, int). Output height and width.
        crop_pct: float in (0, 1]. Fraction of the resized shorter side that is kept. Defaults to 0.875.
        interpolation: str. A `tf.image.resize` method, e.g. "bicubic" or "bilinear". Defaults to "bicubic".

    Returns:
        float32 images of `image_size`, clipped to 0..255 (bicubic overshoot).

    >>> center_crop(np.full((40, 60, 3), 255, np.uint8), 32).shape  # resized to 36x54, centre 32x32
    TensorShape([32, 32, 3])
    """
    from keras_mlp.backend import tf
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f"`image_size` must be a positive int or (height, width), got {image_size!r}.")
    if isinstance(crop_pct, bool) or not isinstance(crop_pct, (int, float)) or not 0.0 < crop_pct <= 1.0:
        raise ValueError(f"`crop_pct` must be a float in (0, 1], got {crop_pct!r}. Pass e.g. crop_pct=0.875.")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"Unknown `interpolation`={interpolation!r}. Use one of {INTERPOLATIONS}.")
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    if images.shape.rank not in (None, 3, 4):
        raise ValueError(f"`images` must be (H, W, C) or (B, H, W, C), got shape {tuple(images.shape)}.")
    hw = tf.shape(images)[-3:-1]
    resized = (math.floor(max(size) / crop_pct) * hw) // tf.reduce_min(hw)  # the shorter side exactly, as timm
    images = tf.image.resize(images, resized, method=interpolation)
    diff = resized - tf.constant(size, tf.int32)  # >= 0 since crop_pct <= 1
    half = diff // 2
    top, left = tf.unstack(half + (diff % 2) * (half % 2))  # round(diff / 2) half to even, as torchvision
    images = tf.image.crop_to_bounding_box(images, top, left, size[0], size[1])
    return tf.clip_by_value(images, 0.0, 255.0)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How the variant's images are prepared: (x / 255 - mean) / std after resize and centre crop."""

    mean: tuple[float, float, float] = HALF
    std: tuple[float, float, float] = HALF
    crop_pct: float = 0.875
    interpolation: str = "bicubic"

    def __call__(self, images, image_size):
        """Evaluation preprocessing of (H, W, 3) or (B, H, W, 3) images with values 0..255 (timm's eval transform):
        `center_crop` with this variant's `crop_pct` and `interpolation`, then normalise.

        >>> Preprocessing()(np.full((40, 60, 3), 255, np.uint8), 32).shape
        TensorShape([32, 32, 3])
        """
        from keras_mlp.backend import tf
        channels = (images.shape if hasattr(images, "shape") else np.shape(images))[-1]
        if channels != len(self.mean):
            raise ValueError(f"Preprocessing normalises {len(self.mean)}-channel images, got {channels} channels. "
                             "Convert the images to RGB, or normalise them yourself with your own mean/std.")
        images = center_crop(images, image_size, self.crop_pct, self.interpolation)
        return (images / 255.0 - tf.constant(self.mean)) / tf.constant(self.std)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One registered model: its family, arguments and the facts recorded next to it."""

    name: str
    family: type[MLPTrunk]
    kwargs: dict[str, Any]
    params: int  # with the 1000-class head at 224x224, from the papers' reference code
    paper: str
    preprocessing: Preprocessing = Preprocessing()
    classifier: str = "head"
    weights: tuple[str, ...] = ()  # where published weights come from (loaded by issue "checkpoints")


MIXER = "Tolstikhin et al. 2021, arXiv:2105.01601"
RESMLP = "Touvron et al. 2021, arXiv:2105.03404"
GMLP_PAPER = "Liu et al. 2021, arXiv:2105.08050"
FF = "Melas-Kyriazi 2021, arXiv:2105.02723"
_DEIT = Preprocessing(IMAGENET_MEAN, IMAGENET_STD)
_MIXER_SIZES = {"s": (8, 512, 256, 2048), "b": (12, 768, 384, 3072), "l": (24, 1024, 512, 4096),
                "h": (32, 1280, 640, 5120)}

VARIANTS: dict[str, Variant] = {}


def _register(name: str, family, params: int, paper: str, weights=(), preprocessing=Preprocessing(), **kwargs):
    VARIANTS[name] = Variant(name, family, kwargs, params, paper, preprocessing, weights=tuple(weights))


def _mixer(size: str, patch: int, params: int, weights=()):
    blocks, width, tokens, channels = _MIXER_SIZES[size]
    _register(f"mixer_{size}{patch}_224", MLPMixer, params, MIXER, weights, patch_size=patch, num_blocks=blocks,
              hidden_dim=width, tokens_mlp_dim=tokens, channels_mlp_dim=channels)


_mixer("s", 32, 19_104_624)
_mixer("s", 16, 18_528_264)
_mixer("b", 32, 60_293_428, ["gs://mixer_models/sam/Mixer-B_32.npz"])
_mixer("b", 16, 59_880_472, ["gs://mixer_models/imagenet1k/Mixer-B_16.npz",
                             "gs://mixer_models/imagenet21k/Mixer-B_16.npz",
                             "hf-hub:timm/mixer_b16_224.goog_in21k_ft_in1k"])
_mixer("l", 32, 206_939_264)
_mixer("l", 16, 208_196_168, ["gs://mixer_models/imagenet1k/Mixer-L_16.npz",
                              "gs://mixer_models/imagenet21k/Mixer-L_16.npz",
                              "hf-hub:timm/mixer_l16_224.goog_in21k_ft_in1k"])
_mixer("h", 14, 432_350_952)

for _depth, _init, _params in ((12, 0.1, 15_350_872), (24, 1e-5, 30_020_680), (36, 1e-6, 44_690_488)):
    _register(f"resmlp_{_depth}_224", ResMLP, _params, RESMLP,
              [f"https://dl.fbaipublicfiles.com/deit/resmlp_{_depth}_no_dist.pth",
               f"hf-hub:timm/resmlp_{_depth}_224.fb_in1k"], _DEIT,
              patch_size=16, num_blocks=_depth, hidden_dim=384, init_values=_init)
_register("resmlp_b24_224", ResMLP, 115_736_776, RESMLP, (), _DEIT, patch_size=16, num_blocks=24, hidden_dim=768,
          init_values=1e-6)
_register("resmlp_big_24_224", ResMLP, 129_138_280, RESMLP,  # deit's resmlpB_24 is the patch-8 model
          ["https://dl.fbaipublicfiles.com/deit/resmlpB_24_no_dist.pth", "hf-hub:timm/resmlp_big_24_224.fb_in1k"],
          _DEIT, patch_size=8, num_blocks=24, hidden_dim=768, init_values=1e-6)

for _size, _width, _params in (("ti", 128, 5_867_328), ("s", 256, 19_422_656), ("b", 512, 73_075_392)):
    _register(f"gmlp_{_size}16_224", GMLP, _params, GMLP_PAPER,
              ["hf-hub:timm/gmlp_s16_224.ra3_in1k"] if _size == "s" else (),
              patch_size=16, num_blocks=30, hidden_dim=_width)

_register("ff_ti16_224", FeedForwardViT, 7_676_332, FF, ["lukemelas/do-you-even-need-attention: linear-tiny"], _DEIT,
          patch_size=16, num_blocks=12, hidden_dim=192)
_register("ff_b16_224", FeedForwardViT, 61_943_020, FF, ["lukemelas/do-you-even-need-attention: linear-base"], _DEIT,
          patch_size=16, num_blocks=12, hidden_dim=768)
_register("ff_l32_224", FeedForwardViT, 206_363_576, FF, (), _DEIT,
          patch_size=32, num_blocks=24, hidden_dim=1024, pos_embed_grid=(14, 14))


def list_models(family: str | None = None) -> list[str]:
    """Registered variant names, sorted; `family` ("mixer", "resmlp", "gmlp", "ff") filters by prefix block."""
    return sorted(n for n, v in VARIANTS.items() if family is None or v.family.block == family)


def get_variant(name: str) -> Variant:
    """The registry entry of `name`; a `ValueError` with the closest names otherwise."""
    if name not in VARIANTS:
        close = difflib.get_close_matches(str(name), VARIANTS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Choose from keras_mlp.list_models(): "
                         f"{', '.join(list_models())}.")
    return VARIANTS[name]


def accepted_arguments(family: type[MLPTrunk]) -> set[str]:
    """Constructor arguments a family takes: its own plus the trunk's (minus `block_config`)."""
    names = set()
    for cls in (family, MLPTrunk):
        names |= {p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")}
    return names - {"block_config"} | {"name", "dtype", "trainable"}


def create_model(name: str, weights=None, **overrides) -> MLPTrunk:
    """Build the registered variant `name`; keyword `overrides` replace its arguments (e.g. `num_classes=10`).

    `weights` (a checkpoint path or `{key: array}`, see `keras_mlp.checkpoints`) loads published weights: the class
    count and patch grid come from the checkpoint; another `num_classes` gets a fresh head (logged), another
    `image_size` a resized model (`keras_mlp.resize`).

    >>> create_model("mixer_s16_224", image_size=32, num_blocks=1, num_classes=10).output_shape
    (None, 10)
    """
    variant = get_variant(name)
    unknown = sorted(set(overrides) - accepted_arguments(variant.family))
    if unknown:
        raise TypeError(f"Unknown argument(s) {unknown} for {name} ({variant.family.__name__}). Accepted: "
                        f"{', '.join(sorted(accepted_arguments(variant.family)))}.")
    if weights is not None:
        from keras_mlp.checkpoints import build_with_weights
        return build_with_weights(lambda **kw: variant.family(**{"name": name, **kw}), {**variant.kwargs, **overrides},
                                  overrides, weights)
    return variant.family(**{**variant.kwargs, "name": name, **overrides})


def markdown_table() -> str:
    """The README's model table, generated from the registry."""
    rows = ["| name | family | patch | blocks | width | mixing | params | paper |", "|---|---|---|---|---|---|---|---|"]
    for name in list_models():
        v = VARIANTS[name]
        args = {k: p.default for k, p in inspect.signature(v.family.__init__).parameters.items()} | v.kwargs
        if "tokens_mlp_dim" in args:
            mixing = f"token MLP {args['tokens_mlp_dim']}, channel MLP {args['channels_mlp_dim']}"
        else:
            mixing = f"MLP {args['mlp_ratio']:g}×" + (f", LayerScale {args['init_values']:g}" if "init_values" in args else "")
            mixing += f", pos. grid {args['pos_embed_grid']}" if args.get("pos_embed_grid") else ""
        rows.append(f"| `{name}` | {v.family.__name__} | {args['patch_size']} | {args['num_blocks']} | "
                    f"{args['hidden_dim']} | {mixing} | {v.params:,} | {v.paper} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())

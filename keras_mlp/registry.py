"""The variant registry: every paper variant as a small table of constructor arguments plus what a user needs
beside the architecture (parameter count, preprocessing, classifier layer, weight sources).

`create_model(name, **overrides)` builds one (overrides win); `list_models()` lists the names. The test suite
runs its whole battery over this registry.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
from typing import Any

from keras_mlp.models import GMLP, FeedForwardViT, MLPMixer, MLPTrunk, ResMLP
from keras_mlp.preprocessing import Preprocessing
from keras_mlp.weights.download import resolve_weights
from keras_mlp.weights.loading import build_with_weights
from keras_mlp.weights.preset_folder import load_preset, preset_family
from keras_mlp.weights.preset_folder import save_preset as write_preset


@dataclasses.dataclass(frozen=True)
class Variant:
    """One registered model: its family, arguments and the facts recorded next to it."""

    name: str
    family: type[MLPTrunk]
    kwargs: dict[str, Any]
    params: int  # with the 1000-class head at 224x224, from the papers' reference code
    paper: str
    preprocessing: Preprocessing | None = None  # None: the family's default_preprocessing
    classifier: str = "head"
    weights: tuple[str, ...] = ()  # where published weights come from

    def __post_init__(self):
        if self.preprocessing is None:
            object.__setattr__(self, "preprocessing", self.family.default_preprocessing)


MIXER = "Tolstikhin et al. 2021, arXiv:2105.01601"
RESMLP = "Touvron et al. 2021, arXiv:2105.03404"
GMLP_PAPER = "Liu et al. 2021, arXiv:2105.08050"
FF = "Melas-Kyriazi 2021, arXiv:2105.02723"
_MIXER_SIZES = {"s": (8, 512, 256, 2048), "b": (12, 768, 384, 3072), "l": (24, 1024, 512, 4096),
                "h": (32, 1280, 640, 5120)}

VARIANTS: dict[str, Variant] = {}


def _register(name: str, family, params: int, paper: str, weights=(), preprocessing=None, **kwargs):
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
               f"hf-hub:timm/resmlp_{_depth}_224.fb_in1k"],
              patch_size=16, num_blocks=_depth, hidden_dim=384, init_values=_init)
_register("resmlp_b24_224", ResMLP, 115_736_776, RESMLP, (), patch_size=16, num_blocks=24, hidden_dim=768,
          init_values=1e-6)
_register("resmlp_big_24_224", ResMLP, 129_138_280, RESMLP,  # deit's resmlpB_24 is the patch-8 model
          ["https://dl.fbaipublicfiles.com/deit/resmlpB_24_no_dist.pth", "hf-hub:timm/resmlp_big_24_224.fb_in1k"],
          patch_size=8, num_blocks=24, hidden_dim=768, init_values=1e-6)

for _size, _width, _params in (("ti", 128, 5_867_328), ("s", 256, 19_422_656), ("b", 512, 73_075_392)):
    _register(f"gmlp_{_size}16_224", GMLP, _params, GMLP_PAPER,
              ["hf-hub:timm/gmlp_s16_224.ra3_in1k"] if _size == "s" else (),
              patch_size=16, num_blocks=30, hidden_dim=_width)

_register("ff_ti16_224", FeedForwardViT, 7_676_332, FF, ["lukemelas/do-you-even-need-attention: linear-tiny"],
          patch_size=16, num_blocks=12, hidden_dim=192)
_register("ff_b16_224", FeedForwardViT, 61_943_020, FF, ["lukemelas/do-you-even-need-attention: linear-base"],
          patch_size=16, num_blocks=12, hidden_dim=768)
_register("ff_l32_224", FeedForwardViT, 206_363_576, FF, (),
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


def _check_arguments(family: type[MLPTrunk], name: str, overrides: dict) -> None:
    unknown = sorted(set(overrides) - accepted_arguments(family))
    if unknown:
        raise TypeError(f"Unknown argument(s) {unknown} for {name} ({family.__name__}). Accepted: "
                        f"{', '.join(sorted(accepted_arguments(family)))}.")


def _is_folder(name: str) -> bool:
    """A preset folder path, not a registry name (registered names win over folders of the same name)."""
    if name.partition(".")[0] in VARIANTS:
        return False
    return os.path.isdir(name) or os.sep in name or bool(os.altsep and os.altsep in name)


def create_model(name: str | os.PathLike, weights=None, **overrides) -> MLPTrunk:
    """Build the registered variant `name`; keyword `overrides` replace its arguments (e.g. `num_classes=10`).

    `weights` (a checkpoint path or `{key: array}`, see `keras_mlp.weights.loading`) loads published weights: the
    class count, patch grid and image size come from the checkpoint; another `num_classes` gets a fresh head
    (logged), another `image_size` a resized model (`keras_mlp.resize`).

    `name` may be a preset (`"mixer_b16_224.goog_in21k_ft_in1k"`) and `weights` a preset tag, a path or an https URL
    (`keras_mlp.weights.resolve_weights`: downloaded once into the Keras cache, verified); a preset model carries the
    preset's preprocessing and class names. `name` may also be a preset folder (`keras_mlp.save_preset`), loaded
    with its own architecture, weights, preprocessing and class names; overrides rebuild it.

    The arguments are checked before anything is downloaded or loaded.

    >>> create_model("mixer_s16_224", image_size=32, num_blocks=1, num_classes=10).output_shape
    (None, 10)
    """
    name = os.fspath(name)
    if _is_folder(name):
        _check_arguments(preset_family(name), name, overrides)
        if weights is not None:
            raise ValueError(f"{name} is a preset folder, which holds its own weights; leave out weights=.")
        return load_preset(name, **overrides)
    model_name = name.partition(".")[0]
    variant = get_variant(model_name)
    _check_arguments(variant.family, model_name, overrides)
    model_name, weights, overrides = resolve_weights(name, weights, overrides)
    if weights is not None:
        return build_with_weights(lambda **kw: variant.family(**{"name": model_name, **kw}),
                                  {**variant.kwargs, **overrides}, overrides, weights)
    return variant.family(**{**variant.kwargs, "name": model_name, **overrides})


def save_preset(model: MLPTrunk, folder: str | os.PathLike, *, source_weights=None) -> str:
    """Write `model` as a preset folder that `create_model(folder)` loads (`keras_mlp.weights.preset_folder`).

    `source_weights` (the preset, URL or file it was fine-tuned from) is recorded as provenance, and the registry
    name when the model is a registered variant (as `create_model` names it).
    """
    variant = VARIANTS.get(model.name)
    registry_name = model.name if variant is not None and isinstance(model, variant.family) else None
    return write_preset(model, folder, registry_name=registry_name, source_weights=source_weights)


def markdown_table() -> str:
    """The README's model table, generated from the registry."""
    rows = ["| name | family | patch | blocks | width | mixing | params | paper |", "|---|---|---|---|---|---|---|---|"]
    for name in list_models():
        v = VARIANTS[name]
        args = {k: p.default for k, p in inspect.signature(v.family.__init__).parameters.items()} | v.kwargs
        if "tokens_mlp_dim" in args:
            mixing = f"token MLP {args['tokens_mlp_dim']}, channel MLP {args['channels_mlp_dim']}"
        else:
            mixing = f"MLP {args['mlp_ratio']:g}×"
            mixing += f", LayerScale {args['init_values']:g}" if "init_values" in args else ""
            mixing += f", pos. grid {args['pos_embed_grid']}" if args.get("pos_embed_grid") else ""
        rows.append(f"| `{name}` | {v.family.__name__} | {args['patch_size']} | {args['num_blocks']} | "
                    f"{args['hidden_dim']} | {mixing} | {v.params:,} | {v.paper} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())

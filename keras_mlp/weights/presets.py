"""Published weights as named presets `<model>.<tag>` (timm's `pretrained_cfg` keys, keras-hub's presets).

A `Preset` names its file(s), their key layout, the class count and label set, the preprocessing the weights
were trained and evaluated with, licence and provenance, and the published ImageNet top-1 to check against.
Every fact comes from the sources cited in `provenance` / `top1_source`:

- timm `timm/models/mlp_mixer.py` `default_cfgs` (URLs, tags, class counts, mean/std, crop, interpolation,
  licence) and `results/results-imagenet.csv` (top-1 measured by timm with that cfg);
- google-research/vision_transformer `README.md` and `vit_jax.ipynb` (the `gsutil ls gs://mixer_models/*`
  listing of the official Flax `.npz` files; images scaled to [-1, 1], i.e. mean = std = 0.5);
- facebookresearch/deit `README_resmlp.md`; lukemelas/do-you-even-need-attention `README.md` with deit's
  `datasets.py` eval transform of that time (Resize(256/224 · size, bicubic), CenterCrop, ImageNet mean/std).

Files: timm's Hugging Face hub `model.safetensors` first (no torch needed), then the same weights elsewhere
(timm's GitHub release `.pth`, whose name carries the first 8 hex digits of its sha256; deit's `.pth`).
"""
from __future__ import annotations

import dataclasses
import difflib

from keras_mlp.preprocessing import HALF, IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from keras_mlp.weights.labels import class_names

LABEL_SETS = {"imagenet-1k": 1000, "imagenet-21k-goog": 21843, "imagenet-21k-miil": 11221}

# Layout names (keras_mlp.models.*_weights.LAYOUTS)
TIMM_MIXER, FLAX_MIXER = "timm MlpMixer", "official Flax .npz (vit_jax)"
TIMM_RESMLP, DEIT_RESMLP, TIMM_GMLP = "timm ResMLP", "deit resmlp_models.py", "timm gMLP"
FF_LAYOUT = "do-you-even-need-attention"

TIMM_CFG = "timm mlp_mixer.py default_cfgs"
TIMM_TOP1 = "timm results/results-imagenet.csv"
HUB = "https://huggingface.co/timm/{}/resolve/main/model.safetensors"
TIMM_RELEASE = "https://github.com/rwightman/pytorch-image-models/releases/download/"
FLAX = "https://storage.googleapis.com/mixer_models/"
DEIT = "https://dl.fbaipublicfiles.com/deit/"
FF = "https://github.com/lukemelas/do-you-even-need-attention/releases/download/v0.0.1/"


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One published file of a preset's weights.

    Attributes:
        url: str. https URL.
        layout: str. The keras_mlp key layout (`Layout.name`) the file is in.
        sha256: str or None. Its sha256 hex digest, or the leading digits of it (timm release names carry 8).
    """

    url: str
    layout: str
    sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class Preset:
    """Published weights for one registered model, with the facts needed to use them.

    Attributes:
        model: str. The registry name (`keras_mlp.list_models()`).
        tag: str. The weights' tag; the preset is `f"{model}.{tag}"`.
        files: tuple of `WeightFile`. The same weights as published, preferred first.
        num_classes: int or None. Classes of the head (None: a self-supervised backbone, head not checked).
        label_set: str or None. A key of `LABEL_SETS`: the classes in head order (None: no named classes).
        preprocessing: `Preprocessing`. The evaluation preprocessing of these weights (mean/std, crop, resize).
        image_size: int. The input size the weights were trained at.
        top1: float or None. Published ImageNet-1k top-1 (%), measured with this preprocessing.
        top1_source: str. Where `top1` is published.
        license: str. The licence the publisher states for the weights.
        provenance: str. Who trained them, on what, and where each fact comes from.
    """

    model: str
    tag: str
    files: tuple[WeightFile, ...]
    num_classes: int | None
    label_set: str | None
    preprocessing: Preprocessing
    top1: float | None
    top1_source: str
    license: str
    provenance: str
    image_size: int = 224

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"


PRESETS: dict[str, Preset] = {}


def _add(preset: Preset) -> None:
    PRESETS[preset.name] = preset


def _timm(model: str, tag: str, release: str | None, top1: float | None, classes: int | None = 1000,
          labels: str | None = "imagenet-1k", mean=HALF, std=HALF, interpolation="bicubic", also=(),
          layout: str = TIMM_MIXER, provenance: str = "") -> None:
    """A timm-hosted preset: hub safetensors first, then timm's release file (sha256 prefix in its name)."""
    files = [WeightFile(HUB.format(f"{model}.{tag}"), layout)]
    if release:
        files.append(WeightFile(TIMM_RELEASE + release, layout, release.rsplit("-", 1)[1].split(".")[0]))
    _add(Preset(model, tag, (*files, *also), classes, labels, Preprocessing(mean, std, 0.875, interpolation), top1,
                f"{TIMM_TOP1} (crop 0.875, {interpolation})" if top1 else "none published for this head",
                "apache-2.0 (timm cfg)", f"{provenance} Facts: {TIMM_CFG}['{model}.{tag}']."))


_GOOG = "Google's MLP-Mixer (Tolstikhin et al. 2021) in vit_jax, converted to timm's layout by timm."
_I1K_NOTE = (" timm tags it in21k→in1k, but a Mixer author (A. Kolesnikov, timm PR #651) says the 76.5% model "
             "timm converted is their ImageNet-1k model; no in21k→in1k Mixer was published then.")
_timm("mixer_b16_224", "goog_in21k_ft_in1k", "v0.1-vitjx/jx_mixer_b16_224-76587d61.pth", 76.616,
      provenance=_GOOG + _I1K_NOTE)
_timm("mixer_b16_224", "goog_in21k", "v0.1-vitjx/jx_mixer_b16_224_in21k-617b3de2.pth", None, 21843,
      "imagenet-21k-goog", provenance=_GOOG + " ImageNet-21k (21,843 classes) pre-training head.")
_timm("mixer_l16_224", "goog_in21k_ft_in1k", "v0.1-vitjx/jx_mixer_l16_224-92f9adc4.pth", 72.084,
      provenance=_GOOG + _I1K_NOTE.replace("76.5% ", ""))
_timm("mixer_l16_224", "goog_in21k", "v0.1-vitjx/jx_mixer_l16_224_in21k-846aa33c.pth", None, 21843,
      "imagenet-21k-goog", provenance=_GOOG + " ImageNet-21k (21,843 classes) pre-training head.")
_MIIL = "Alibaba MIIL's ImageNet-21K-P pre-training (timm PR #651, T. Ridnik),"
_timm("mixer_b16_224", "miil_in21k", "v0.1-tresnet/mixer_b16_224_miil_in21k-2a558a71.pth", None, 11221,
      "imagenet-21k-miil", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "bilinear",
      provenance=_MIIL + " 11,221-class ImageNet-21K-P head.")
_timm("mixer_b16_224", "miil_in21k_ft_in1k", "v0.1-tresnet/mixer_b16_224_miil-9229a591.pth", 82.314, 1000,
      "imagenet-1k", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "bilinear", provenance=_MIIL + " fine-tuned on ImageNet-1k.")


def _resmlp(model: str, tag: str, deit_file: str, top1: float | None, provenance: str) -> None:
    """A ResMLP preset: timm's hub copy first, then the authors' deit `.pth` (their key names)."""
    _timm(model, tag, None, top1, None if tag == "fb_dino" else 1000, None if tag == "fb_dino" else "imagenet-1k",
          IMAGENET_MEAN, IMAGENET_STD, also=(WeightFile(DEIT + deit_file, DEIT_RESMLP),), layout=TIMM_RESMLP,
          provenance=f"Facebook AI's ResMLP (Touvron et al. 2021), {provenance} Published as deit's {deit_file}.")


_RESMLP = {"resmlp_12_224": "_12", "resmlp_24_224": "_24", "resmlp_36_224": "_36", "resmlp_big_24_224": "B_24"}
# (tag, deit file kind): timm's top-1 (results-imagenet.csv, crop 0.875) and deit's own (README_resmlp.md, crop 0.9)
_RESMLP_TOP1 = {("fb_in1k", "no_dist"): ((76.660, 79.380, 79.772, 81.034), (None, None, None, None)),
                ("fb_distilled_in1k", "dist"): ((77.948, 80.766, 81.150, 83.594), (77.8, 80.8, 81.1, 83.6))}
for (_tag, _kind), (_timm_top1, _deit_top1) in _RESMLP_TOP1.items():
    for (_model, _deit), _top1, _authors in zip(_RESMLP.items(), _timm_top1, _deit_top1):
        _resmlp(_model, _tag, f"resmlp{_deit}_{_kind}.pth", _top1,
                "trained on ImageNet-1k" + (" with DeiT distillation." if _kind == "dist" else ".") +
                (f" deit README_resmlp.md: {_authors}% at its own eval crop 0.9." if _authors else ""))
_resmlp("resmlp_big_24_224", "fb_in22k_ft_in1k", "resmlpB_24_22k.pth", 84.414,
        "ResMLP-B24/8 pre-trained on ImageNet-22k, fine-tuned on ImageNet-1k. deit README_resmlp.md: 84.4% at "
        "its own eval crop 0.9.")
for _model, _knn in (("resmlp_12_224", 62.6), ("resmlp_24_224", 69.4)):
    _resmlp(_model, "fb_dino", f"resmlp{_RESMLP[_model]}_dino.pth", None,
            "trained self-supervised with DINO, not fine-tuned: a backbone to fine-tune, its head is no ImageNet "
            f"classifier (deit README_resmlp.md: k-NN top-1 {_knn}%).")
_timm("gmlp_s16_224", "ra3_in1k", "v0.1-weights/gmlp_s16_224_raa-10536d42.pth", 79.652, layout=TIMM_GMLP,
      provenance="gMLP-S (Liu et al. 2021) trained on ImageNet-1k by R. Wightman with timm (RandAugment recipe).")


def _flax(model: str, tag: str, path: str, classes: int, labels: str, crop_pct: float, top1: float | None,
          top1_source: str, provenance: str) -> None:
    _add(Preset(model, tag, (WeightFile(FLAX + path, FLAX_MIXER),), classes, labels,
                Preprocessing(HALF, HALF, crop_pct, "bicubic"), top1, top1_source,
                "apache-2.0 (google-research/vision_transformer)",
                "Official MLP-Mixer Flax checkpoint (google-research/vision_transformer, gs://mixer_models, listed "
                f"in vit_jax.ipynb); images scaled to [-1, 1] (vit_jax input_pipeline.py). {provenance}"))


_TIMM_PP = "Eval crop/interpolation: timm's cfg for its conversion of these files."
_flax("mixer_b16_224", "flax_in1k", "imagenet1k/Mixer-B_16.npz", 1000, "imagenet-1k", 0.875, 76.5,
      "A. Kolesnikov (Mixer author) in timm PR #651: '76.5% accuracy corresponds to our ImageNet-1k model'",
      "Trained on ImageNet-1k. " + _TIMM_PP)
_flax("mixer_l16_224", "flax_in1k", "imagenet1k/Mixer-L_16.npz", 1000, "imagenet-1k", 0.875, None,
      "none published for this file", "Trained on ImageNet-1k. " + _TIMM_PP)
for _model, _file in (("mixer_b16_224", "Mixer-B_16"), ("mixer_l16_224", "Mixer-L_16")):
    _flax(_model, "flax_in21k", f"imagenet21k/{_file}.npz", 21843, "imagenet-21k-goog", 0.875, None,
          "none published for this head", "ImageNet-21k pre-training, 21,843-class head. " + _TIMM_PP)
_SAM_PP = ("Eval crop 0.9 bicubic: timm's cfg for the ViT SAM .npz of the same release "
           "(vision_transformer.py, vit_base_patch16_224.sam_in1k).")
_flax("mixer_b16_224", "flax_sam_in1k", "sam/Mixer-B_16.npz", 1000, "imagenet-1k", 0.9, 77.4,
      "Chen et al. 2021 (arXiv:2106.01548) as quoted in google-research/vision_transformer#134, where a user "
      "measured 68.9% with this file (issue open)", "Trained on ImageNet-1k with SAM (README 2021-07-02). " + _SAM_PP)
_flax("mixer_b32_224", "flax_sam_in1k", "sam/Mixer-B_32.npz", 1000, "imagenet-1k", 0.9, None,
      "none found in the sources read", "Trained on ImageNet-1k with SAM (README 2021-07-02). " + _SAM_PP)
for _model, _file in (("mixer_s16_224", "Mixer-S_16"), ("mixer_s32_224", "Mixer-S_32"),
                      ("mixer_b16_224", "Mixer-B_16"), ("mixer_b32_224", "Mixer-B_32")):
    _flax(_model, "flax_gsam_in1k", f"gsam/{_file}.npz", 1000, "imagenet-1k", 0.9, None,
          "none found in the sources read", "Trained on ImageNet-1k with GSAM (Zhuang et al. 2022, README "
          "2022-06-09). GSAM's eval preprocessing is not stated; taken as the SAM release's. " + _SAM_PP)

for _model, _name, _top1 in (("ff_ti16_224", "tiny", 61.4), ("ff_b16_224", "base", 74.9)):
    _add(Preset(_model, "lukemelas_in1k", (WeightFile(f"{FF}linear-{_name}-checkpoint.pth", FF_LAYOUT),), 1000,
                "imagenet-1k", Preprocessing(IMAGENET_MEAN, IMAGENET_STD, 0.875, "bicubic"), _top1,
                "lukemelas/do-you-even-need-attention README.md", "none stated (the repository has no LICENSE file)",
                f"FF-{_name} (Melas-Kyriazi 2021) trained on ImageNet-1k with deit's code; only a PyTorch .pth is "
                "published. Preprocessing: deit datasets.py build_transform at 2f76ec6 (May 2021)."))


def list_presets(model: str | None = None) -> list[str]:
    """Preset names `<model>.<tag>`, sorted; `model` keeps that model's presets only."""
    return sorted(name for name, p in PRESETS.items() if model is None or p.model == model)


def get_preset(name: str) -> Preset:
    """The preset `name` (`<model>.<tag>`); a `ValueError` with the closest names otherwise."""
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), PRESETS, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown preset {name!r}.{hint} See keras_mlp.list_presets().")
    return PRESETS[name]


def preset_class_names(preset: Preset | str) -> tuple[str, ...] | None:
    """The preset's class names in head order (WordNet lemmas, see `keras_mlp.weights.labels`), or None.

    >>> preset_class_names("mixer_b16_224.goog_in21k_ft_in1k")[:2]
    ('tench, Tinca tinca', 'goldfish, Carassius auratus')
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    return None if preset.label_set is None else class_names(preset.label_set)

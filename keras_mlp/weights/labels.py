"""Human-readable class names of the ImageNet label sets the presets' heads predict.

The WordNet IDs of each label set in head order, and WordNet's lemmas for them, are the files timm ships with its
PyPI wheel (`timm/data/_info/`), copied into `keras_mlp/weights/data/` (see its README.md). A class is named by
its lemmas (`"tench, Tinca tinca"`); where two classes of one set share their lemmas (ImageNet-1k has two
"crane"s, a bird and a machine), each gets its WordNet ID appended, so the names of a set are unique.
"""
from __future__ import annotations

import collections
import functools
import gzip
import os

DATA = os.path.join(os.path.dirname(__file__), "data")
SYNSET_FILES = {"imagenet-1k": "imagenet_synsets.txt.gz", "imagenet-21k-goog": "imagenet21k_goog_synsets.txt.gz",
                "imagenet-21k-miil": "imagenet21k_miil_synsets.txt.gz"}


def _lines(name: str) -> list[str]:
    with gzip.open(os.path.join(DATA, name), "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def synsets(label_set: str) -> tuple[str, ...]:
    """The WordNet IDs of `label_set` (a key of `SYNSET_FILES`) in head order."""
    if label_set not in SYNSET_FILES:
        raise ValueError(f"Unknown label set {label_set!r}. Known: {', '.join(SYNSET_FILES)}.")
    return tuple(_lines(SYNSET_FILES[label_set]))


@functools.cache
def _lemmas() -> dict[str, str]:
    return dict(line.split("\t", 1) for line in _lines("imagenet_synset_to_lemma.txt.gz"))


@functools.cache
def class_names(label_set: str) -> tuple[str, ...]:
    """Unique human-readable names of `label_set` in head order."""
    ids = synsets(label_set)
    names = [_lemmas()[i] for i in ids]
    repeated = {n for n, count in collections.Counter(names).items() if count > 1}
    return tuple(f"{n} ({i})" if n in repeated else n for n, i in zip(names, ids))

"""The data layer shared by training, export and evaluation: dataset sources (`sources`), `tf.data` pipelines
(`pipeline`) and training augmentation (`augment`)."""
from keras_mlp.data.pipeline import build_pipeline, load_dataset
from keras_mlp.data.sources import DatasetInfo, DataUnavailableError, dataset_info

__all__ = ["DataUnavailableError", "DatasetInfo", "build_pipeline", "dataset_info", "load_dataset"]

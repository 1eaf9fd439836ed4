"""Training of the keras-mlp zoo: data pipelines (`training.data`), recipes, one distributed trainer, the CLI."""

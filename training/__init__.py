"""Training of the keras-mlp zoo: recipes, one distributed trainer, the CLI."""

"""Speed and memory benchmarks of keras-mlp against the machine's matmul peak and peer implementations."""

"""Inference on llama.cpp: the inference engine (one batched generator per base model), its
continuous batching, the GGUF backend, chat templates and the Q8_0 serving copy."""

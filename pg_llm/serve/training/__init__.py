"""LoRA fine-tuning: the job queue the server runs (`jobs`), the worker process that trains
(`worker`, run as `python -m pg_llm.serve.training.worker`), and the conversions between
Hugging Face checkpoints, peft adapters and GGUF. torch/transformers are imported only by the
worker and the conversions, never when the server imports `jobs` or `datasets`."""

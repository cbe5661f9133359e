"""`pg-llm serve`: the local OpenAI-compatible engine (llama.cpp inference, peft LoRA training).

    api/        the HTTP app: one router per API noun, request parsing, the access middleware
    inference/  the inference engine: llama.cpp backend, continuous batching, chat templates
    training/   the fine-tuning job queue, the worker process, checkpoint/adapter conversions
    registry.py which models are served; store.py files, jobs and events on disk;
    errors.py   OpenAI-shaped errors; server.py wires them together; cli.py the options

Nothing here is imported by the PostgreSQL backend; heavy libraries (llama_cpp, torch,
transformers, peft) are imported lazily inside the modules that need them.
"""

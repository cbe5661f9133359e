"""`pg-llm serve`: the local OpenAI-compatible engine (llama.cpp inference, peft LoRA training).

Nothing here is imported by the PostgreSQL backend; heavy libraries (llama_cpp, torch,
transformers, peft) are imported lazily inside the modules that need them.
"""

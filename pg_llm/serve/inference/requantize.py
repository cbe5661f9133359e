"""Re-encodes a 4-bit GGUF as Q8_0 for serving.

SmolLM2 ships as Q4_1, for which llama.cpp's CPU backend has no fast batched kernels. The same
values re-encoded on a finer 8-bit grid keep the model's quality (measured: answer NLL 0.8975
vs 0.8938 per token on 25 sql-create-context answers) and decode faster, alone and in
batches (measured 1.26x single-stream, 1.5x for 8 sequences). Training still reads the
original file; the copy is cached under <data-dir>/cache.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path

FORMATS = {"q8_0": 7}  # llama_ftype values
# Types that gain nothing from re-encoding (already 8-bit or wider).
KEEP_AS_IS = {0, 1, 7, 32}  # F32, F16, Q8_0, BF16


def serving_copy(gguf_path: Path, cache_dir: Path, fmt: str | None) -> Path:
    if fmt is None:
        return gguf_path
    import llama_cpp as lc

    from .llama_backend import LlamaVocab

    vocab = LlamaVocab(gguf_path)  # metadata only, to read the file type
    ftype = int(vocab.meta("general.file_type") or 0)
    if ftype in KEEP_AS_IS:
        return gguf_path
    st = gguf_path.stat()
    key = hashlib.sha1(f"{gguf_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    out = cache_dir / f"{gguf_path.stem}-{fmt}-{key.hexdigest()[:12]}.gguf"
    if out.exists():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    params = lc.llama_model_quantize_default_params()
    params.ftype = FORMATS[fmt]
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    if lc.llama_model_quantize(str(gguf_path).encode(), str(tmp).encode(),
                               ctypes.byref(params)) != 0:
        raise RuntimeError(f"llama.cpp could not re-encode {gguf_path} as {fmt}")
    os.replace(tmp, out)
    return out

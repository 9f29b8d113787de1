"""Student models for LoRA transfer: load a base model (GGUF or HF dir), run it, LoRA-train it, save adapters."""

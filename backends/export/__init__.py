"""Export a LoRA-trained student: fuse into GGUF, quantize with llama.cpp, check fidelity."""

"""Linguistic RL + LoRA knowledge transfer: domains, stages, curriculum, evaluation."""

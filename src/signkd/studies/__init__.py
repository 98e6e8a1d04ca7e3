"""Multi-seed studies: the modality study and the distillation ablation."""

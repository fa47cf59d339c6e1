// CraftTraining: CRAFT fine-tuning of vision encoders (docs/training.md): losses, optimiser, schedules, datasets, checkpoints.

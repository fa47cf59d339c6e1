// CraftTraining: CRAFT fine-tuning of vision encoders (DESIGN.md section 11): losses, optimiser, schedules, datasets, checkpoints.

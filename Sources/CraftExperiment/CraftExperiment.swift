// CraftExperiment: the embedded miniature of the paper's experiment (docs/experiment.md). Builds the
// base encoder, codebook and two backends from the exported digits data, adapts the encoder with
// CRAFT, runs the baselines and ablations, and writes the results tables. `make reproduce` runs it.

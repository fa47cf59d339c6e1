// CraftRegistry: directory registries with a sharded index (DESIGN.md section 8) and signatures.

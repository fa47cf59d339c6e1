// CraftBundles: the `.craft` bundle format (DESIGN.md section 5), runtimes and bundle loading.

// libpng; imported only by CraftImaging (Sources/CraftImaging/PNG.swift).
#include <png.h>

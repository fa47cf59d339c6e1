// libpng; imported only by CraftImaging (Sources/CraftImaging/PNG.swift), which uses only the
// simplified `png_image_*` API: it catches libpng's longjmp errors inside C and returns codes.
#include <png.h>

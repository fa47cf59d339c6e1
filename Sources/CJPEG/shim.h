// libjpeg-turbo; imported only by CraftImaging (Sources/CraftImaging/JPEG.swift).
#include <stdio.h>
#include <jpeglib.h>

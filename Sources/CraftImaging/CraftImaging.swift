// CraftImaging: decoding PNG and JPEG images (libpng, libjpeg-turbo) and resizing them.

// libjpeg-turbo's TurboJPEG API; imported only by CraftImaging (Sources/CraftImaging/JPEG.swift).
// TurboJPEG catches libjpeg's setjmp/longjmp errors inside C and returns error codes, so no
// longjmp ever crosses a Swift frame.
#include <turbojpeg.h>

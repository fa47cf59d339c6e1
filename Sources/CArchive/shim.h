// libarchive and zlib; imported only by CraftBundles (Sources/CraftBundles/Archive/). zlib inflates a
// bundle's single gzip member so that every decompressed byte is counted and the trailer is checked.
#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

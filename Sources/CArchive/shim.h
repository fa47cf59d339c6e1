// libarchive; imported only by CraftBundles (Sources/CraftBundles/Archive/).
#include <archive.h>
#include <archive_entry.h>

// The instruction-set cap of Craft's kernels (``craft_max_isa`` in include/CKernels.h).
//
// Every kernel family asks the CPU once which path it can run (elementwise.c, matvec.c, codesearch.c);
// each of those answers is limited by this cap, and the BLAS loader (Sources/CBLAS/loader.c) chooses
// OpenBLAS's kernel family for the capped feature set. It lets a user rule out a faulty or slow
// instruction set, and a benchmark measure on this machine what a CPU without AVX-512 would run, in
// the manner of oneDNN's ONEDNN_MAX_CPU_ISA and PyTorch's ATEN_CPU_CAPABILITY.
#include "CKernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

int craft_max_isa_parse(const char *value) {
    if (value == NULL || value[0] == '\0') return CRAFT_PATH_AVX512;
    if (strcasecmp(value, "avx512") == 0) return CRAFT_PATH_AVX512;
    if (strcasecmp(value, "avx2") == 0) return CRAFT_PATH_AVX2;
    if (strcasecmp(value, "portable") == 0) return CRAFT_PATH_PORTABLE;
    return -1;
}

static char setting_text[64];  // the variable's text as read with the cap
static int cap = CRAFT_PATH_AVX512;
static pthread_once_t read_once = PTHREAD_ONCE_INIT;

/// Reads CRAFT_MAX_ISA once per process (so a later setenv changes neither the cap nor its text); a
/// value not understood is reported on stderr and caps nothing.
static void read_setting(void) {
    const char *setting = getenv("CRAFT_MAX_ISA");
    snprintf(setting_text, sizeof setting_text, "%s", setting ? setting : "");
    const int value = craft_max_isa_parse(setting_text);
    if (value < 0) {
        fprintf(stderr, "warning: CRAFT_MAX_ISA=%s is not avx512, avx2 or portable; Craft's kernels are not capped\n",
                setting_text);
    }
    cap = value < 0 ? CRAFT_PATH_AVX512 : value;
}

int craft_max_isa(void) {
    pthread_once(&read_once, read_setting);
    return cap;
}

const char *craft_max_isa_setting(void) {
    pthread_once(&read_once, read_setting);
    return setting_text;
}

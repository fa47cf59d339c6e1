// The instruction-set cap of Craft's kernels (``craft_max_isa`` in include/CKernels.h).
//
// Every kernel family asks the CPU once which path it can run (elementwise.c, matvec.c, codesearch.c);
// each of those answers is limited by this cap, and the BLAS loader (Sources/CBLAS/loader.c) chooses
// OpenBLAS's kernel family for the capped feature set. It lets a user rule out a faulty or slow
// instruction set, and a benchmark measure on this machine what a CPU without AVX-512 would run, in
// the manner of oneDNN's ONEDNN_MAX_CPU_ISA and PyTorch's ATEN_CPU_CAPABILITY.
#include "CKernels.h"

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

const char *craft_max_isa_setting(void) {
    const char *value = getenv("CRAFT_MAX_ISA");
    return value ? value : "";
}

int craft_max_isa(void) {
    // Read once (every thread reads the same value, so a race only repeats the reading); a value
    // not understood is reported once on stderr and caps nothing.
    static int cached = -1;
    int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (value < 0) {
        const char *setting = craft_max_isa_setting();
        value = craft_max_isa_parse(setting);
        if (value < 0) {
            static int warned = 0;
            if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED)) {
                fprintf(stderr, "warning: CRAFT_MAX_ISA=%s is not avx512, avx2 or portable; Craft's kernels are not capped\n",
                        setting);
            }
            value = CRAFT_PATH_AVX512;
        }
        __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
    }
    return value;
}

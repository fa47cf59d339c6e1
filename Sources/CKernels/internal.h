// Helpers shared by the kernel files of CKernels; not part of the module's interface.
#ifndef CRAFT_KERNELS_INTERNAL_H
#define CRAFT_KERNELS_INTERNAL_H

#include <stdint.h>

/// Whether this CPU runs the AVX2+FMA+F16C kernels (asked once per process).
int craft_cpu_has_avx2(void);

/// An IEEE binary16 value as float32 (exact).
float craft_f16_to_float(uint16_t bits);

#endif

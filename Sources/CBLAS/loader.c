// Loads OpenBLAS at run time, after making sure it will run kernels that match the CPU.
//
// Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH: when it loads, it picks a kernel family for
// the CPU it recognises, and falls back to its SSE3 "Prescott" kernels for CPUs newer than itself
// (an AVX-512 Xeon of family 6 model 207 was measured 3.5x slower that way). It reads the choice
// once, from OPENBLAS_CORETYPE, in its load-time constructor. So Craft does not link OpenBLAS: on the
// first BLAS call it reads the CPU's features (cpuid, and xgetbv for what the OS saves), sets
// OPENBLAS_CORETYPE to the matching family when the user has not set one (an explicit value always
// wins), then dlopen()s the library. docs/tensorcore.md describes the rule. CRAFT_MAX_ISA, when
// set, caps the features the choice rests on (CKernels' craft_max_isa).
//
// It also shortens how long OpenBLAS's idle worker threads spin before they sleep
// (OPENBLAS_THREAD_TIMEOUT, 2^n cycles; OpenBLAS's default n = 28 is about 0.1 s), again only when the
// user has not set it: between two matrix products Craft runs its own threads (attention, elementwise
// kernels), and a BLAS worker spinning with sched_yield took ~12 % of the CPU from them on 2 cores.
#define _GNU_SOURCE
#include "CBLAS.h"
#include "CKernels.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float, float *,
                         int);
typedef int (*get_threads_fn)(void);
typedef void (*set_threads_fn)(int);
typedef char *(*text_fn)(void);

enum { ROW_MAJOR = 101 };

static pthread_once_t once = PTHREAD_ONCE_INIT;
static sgemm_fn sgemm;
static sgemv_fn sgemv;
static get_threads_fn get_threads;
static set_threads_fn set_threads;
static text_fn corename;
static text_fn config;
static const char *selection = "openblas";
static char requested[32] = "";
static char features[160] = "";
static char library[64] = "";
static const char *timeoutSelection = "environment";
static char timeout[16] = "";

// The spin Craft asks for: 2^4 cycles, OpenBLAS's minimum (workers sleep at once; waking one costs a
// few microseconds per product). Measured with the SigLIP encoder on 2 threads: 7 % faster, 10 % less CPU.
static const char *craftThreadTimeout = "4";

const char *craft_blas_choose_core(const char *vendor, int avx2, int fma, int avx512, int osAVX, int osAVX512) {
    if (avx512 && osAVX512) return "SkylakeX";
    if (avx2 && fma && osAVX) return strncmp(vendor, "AuthenticAMD", 12) == 0 ? "Zen" : "Haswell";
    return NULL;
}

static const char *detect(void) {
    unsigned int eax, ebx, ecx, edx;
    char vendor[13] = "";
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return NULL;
    unsigned int maximum = eax;
    memcpy(vendor, &ebx, 4);
    memcpy(vendor + 4, &edx, 4);
    memcpy(vendor + 8, &ecx, 4);
    __get_cpuid(1, &eax, &ebx, &ecx, &edx);
    int fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
    int avx2 = 0, avx512 = 0, osAVX = 0, osAVX512 = 0;
    if (maximum >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        avx2 = (ebx >> 5) & 1;
        // F, DQ, CD, BW and VL: what OpenBLAS's SkylakeX kernels use.
        avx512 = ((ebx >> 16) & 1) && ((ebx >> 17) & 1) && ((ebx >> 28) & 1) && ((ebx >> 30) & 1) && ((ebx >> 31) & 1);
    }
    if (osxsave) {
        unsigned int low, high;
        __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
        osAVX = avx && (low & 0x6) == 0x6;              // SSE and AVX state
        osAVX512 = osAVX && (low & 0xE0) == 0xE0;        // opmask, ZMM0-15 upper, ZMM16-31
    }
    snprintf(features, sizeof features, "%s%s%s%s%s", vendor, avx ? " avx" : "", avx2 ? " avx2" : "",
             fma ? " fma" : "", avx512 && osAVX512 ? " avx512" : "");
    // CRAFT_MAX_ISA caps Craft's kernels and this choice alike: under `avx2` the AVX2 family, under
    // `portable` the SSE3 one (OpenBLAS's own detection could pick wider kernels).
    const int cap = craft_max_isa();
    if (cap < CRAFT_PATH_AVX2 && osAVX) return "Prescott";
    if (cap < CRAFT_PATH_AVX512) avx512 = 0;
    return craft_blas_choose_core(vendor, avx2, fma, avx512, osAVX, osAVX512);
}

static void *symbol(void *handle, const char *name) {
    void *address = dlsym(handle, name);
    if (address == NULL) {
        fprintf(stderr, "error: %s has no %s; Craft needs OpenBLAS (apt-get install libopenblas0)\n", library, name);
        exit(1);
    }
    return address;
}

static void load(void) {
    const char *chosen = detect();
    const char *environment = getenv("OPENBLAS_CORETYPE");
    if (environment != NULL && environment[0] != '\0') {
        selection = "environment";
    } else if (chosen != NULL) {
        snprintf(requested, sizeof requested, "%s", chosen);
        setenv("OPENBLAS_CORETYPE", chosen, 1);
        selection = "craft";
    }
    const char *spin = getenv("OPENBLAS_THREAD_TIMEOUT");
    if (spin != NULL && spin[0] != '\0') {
        snprintf(timeout, sizeof timeout, "%s", spin);
    } else {
        snprintf(timeout, sizeof timeout, "%s", craftThreadTimeout);
        setenv("OPENBLAS_THREAD_TIMEOUT", craftThreadTimeout, 1);
        timeoutSelection = "craft";
    }
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
    void *handle = NULL;
    for (size_t index = 0; index < sizeof names / sizeof names[0] && handle == NULL; index++) {
        handle = dlopen(names[index], RTLD_NOW | RTLD_LOCAL);
        if (handle != NULL) snprintf(library, sizeof library, "%s", names[index]);
    }
    if (handle == NULL) {
        fprintf(stderr, "error: cannot load OpenBLAS (%s); Craft needs it: apt-get install libopenblas0\n", dlerror());
        exit(1);
    }
    // OpenBLAS has read the variable in its constructor: do not pass Craft's choice on to child
    // processes (a Python peer's own OpenBLAS, say), which choose for themselves.
    if (requested[0] != '\0') unsetenv("OPENBLAS_CORETYPE");
    if (strcmp(timeoutSelection, "craft") == 0) unsetenv("OPENBLAS_THREAD_TIMEOUT");
    sgemm = (sgemm_fn)symbol(handle, "cblas_sgemm");
    sgemv = (sgemv_fn)symbol(handle, "cblas_sgemv");
    get_threads = (get_threads_fn)symbol(handle, "openblas_get_num_threads");
    set_threads = (set_threads_fn)symbol(handle, "openblas_set_num_threads");
    corename = (text_fn)symbol(handle, "openblas_get_corename");
    config = (text_fn)symbol(handle, "openblas_get_config");
}

#define LOADED() pthread_once(&once, load)

void craft_blas_sgemm(int transposeA, int transposeB, int m, int n, int k, float alpha, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc) {
    LOADED();
    sgemm(ROW_MAJOR, transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void craft_blas_sgemv(int transpose, int rows, int columns, float alpha, const float *a, int lda, const float *x,
                      int incrementX, float beta, float *y, int incrementY) {
    LOADED();
    sgemv(ROW_MAJOR, transpose, rows, columns, alpha, a, lda, x, incrementX, beta, y, incrementY);
}

int craft_blas_get_threads(void) { LOADED(); return get_threads(); }
void craft_blas_set_threads(int threads) { LOADED(); set_threads(threads); }
const char *craft_blas_core(void) { LOADED(); return corename(); }
const char *craft_blas_config(void) { LOADED(); return config(); }
const char *craft_blas_selection(void) { LOADED(); return selection; }
const char *craft_blas_requested_core(void) { LOADED(); return requested; }
const char *craft_blas_cpu_features(void) { LOADED(); return features; }
const char *craft_blas_library(void) { LOADED(); return library; }
const char *craft_blas_thread_timeout(void) { LOADED(); return timeout; }
const char *craft_blas_thread_timeout_selection(void) { LOADED(); return timeoutSelection; }

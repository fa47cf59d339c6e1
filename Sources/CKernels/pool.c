// The worker threads of TensorCore's parallel loops (``craft_parallel_run`` in include/CKernels.h).
//
// Decoding runs a parallel loop for every matrix product, attention and norm of every layer: about a
// hundred loops of 0.1–0.3 ms per token. Dispatch's concurrentPerform took 35–60 µs on this kind of
// machine to get its second thread going each time (a sleeping worker woken through the kernel), a
// third of the loop's own time. These workers instead wait for the next loop by spinning for a short
// while (CRAFT_POOL_SPIN: 0.1–0.2 ms measured, yielding the CPU to any other runnable thread such as
// OpenBLAS's own workers) and only then sleep on a condition variable, so back-to-back loops start
// in well under a microsecond. The caller runs part 0 itself and waits for the others the same way.
//
// One loop runs at a time: a caller that finds the pool busy (a loop started from inside a loop, or
// from another thread at the same moment) is told so and runs its loop some other way.
#include "CKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CRAFT_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define CRAFT_PAUSE() __asm__ volatile("yield")
#else
#define CRAFT_PAUSE() ((void)0)
#endif

/// Spin iterations (each a pause, with a sched_yield every 64) before a waiting worker sleeps.
#define CRAFT_POOL_SPIN 4096
/// The most workers (parts − 1) the pool starts.
#define CRAFT_POOL_MAX_WORKERS 255

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;  // the sleepers' wake-up, worker start
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;               // one loop at a time
static _Atomic unsigned long pool_generation;                  // bumped once per loop
static _Atomic(craft_parallel_body) job_body;
static _Atomic(void *) job_context;
static _Atomic size_t job_parts;
static _Atomic size_t job_remaining;                           // workers yet to answer for this loop
static size_t pool_workers;                                    // started (under pool_lock)
static size_t pool_sleepers;                                   // waiting on pool_wake (under pool_lock)

/// What a worker starts with: its index (it runs part index + 1) and the generation before its first loop.
struct worker_start {
    size_t index;
    unsigned long generation;
};

static void *worker_main(void *argument) {
    const struct worker_start start = *(struct worker_start *)argument;
    free(argument);
    const size_t index = start.index;
    unsigned long seen = start.generation;
    for (;;) {
        unsigned long generation;
        int spins = 0;
        while ((generation = atomic_load_explicit(&pool_generation, memory_order_acquire)) == seen) {
            if (++spins < CRAFT_POOL_SPIN) {
                CRAFT_PAUSE();
                if (spins % 64 == 0) sched_yield();
                continue;
            }
            pthread_mutex_lock(&pool_lock);
            pool_sleepers++;
            while (atomic_load_explicit(&pool_generation, memory_order_acquire) == seen) pthread_cond_wait(&pool_wake, &pool_lock);
            pool_sleepers--;
            pthread_mutex_unlock(&pool_lock);
            spins = 0;
        }
        seen = generation;
        // The loop of this generation: published before the generation, and not replaced before
        // every worker has answered for it (the caller waits for job_remaining), so it is read whole.
        const size_t parts = atomic_load_explicit(&job_parts, memory_order_relaxed);
        if (index + 1 < parts) {
            craft_parallel_body body = atomic_load_explicit(&job_body, memory_order_relaxed);
            body(atomic_load_explicit(&job_context, memory_order_relaxed), index + 1);
        }
        atomic_fetch_sub_explicit(&job_remaining, 1, memory_order_release);
    }
    return NULL;
}

/// In a child process after fork(), which has none of the parent's workers: an empty pool.
static void forget_workers_after_fork(void) {
    pthread_mutex_init(&pool_lock, NULL);
    pthread_cond_init(&pool_wake, NULL);
    pool_workers = 0;
    pool_sleepers = 0;
    atomic_flag_clear(&pool_busy);
}

static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;
static void install_fork_handler(void) { pthread_atfork(NULL, NULL, forget_workers_after_fork); }

/// Starts workers until there are `count` (or as many as the system gives); returns how many run.
static size_t ensure_workers(size_t count) {
    pthread_once(&fork_handler_once, install_fork_handler);
    pthread_mutex_lock(&pool_lock);
    while (pool_workers < count) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attributes, 8u << 20);
        struct worker_start *start = malloc(sizeof *start);
        if (!start) { pthread_attr_destroy(&attributes); break; }
        // The pool is held by this caller: the generation moves only when it publishes its loop.
        start->index = pool_workers;
        start->generation = atomic_load_explicit(&pool_generation, memory_order_relaxed);
        const int failed = pthread_create(&thread, &attributes, worker_main, start);
        pthread_attr_destroy(&attributes);
        if (failed) { free(start); break; }
        pool_workers++;
    }
    const size_t running = pool_workers;
    pthread_mutex_unlock(&pool_lock);
    return running;
}

int craft_parallel_run(size_t parts, craft_parallel_body body, void *context) {
    if (parts <= 1) {
        if (parts == 1) body(context, 0);
        return 1;
    }
    if (parts - 1 > CRAFT_POOL_MAX_WORKERS) return 0;
    if (atomic_flag_test_and_set_explicit(&pool_busy, memory_order_acquire)) return 0;
    const size_t workers = ensure_workers(parts - 1);
    if (workers < parts - 1) {
        atomic_flag_clear_explicit(&pool_busy, memory_order_release);
        return 0;
    }
    // Every worker answers for every loop, those not needed (index + 1 ≥ parts) without running a
    // part, so the loop's fields are not written again while any worker may still read them.
    atomic_store_explicit(&job_body, body, memory_order_relaxed);
    atomic_store_explicit(&job_context, context, memory_order_relaxed);
    atomic_store_explicit(&job_parts, parts, memory_order_relaxed);
    atomic_store_explicit(&job_remaining, workers, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool_generation, 1, memory_order_release);
    pthread_mutex_lock(&pool_lock);
    if (pool_sleepers) pthread_cond_broadcast(&pool_wake);
    pthread_mutex_unlock(&pool_lock);

    body(context, 0);
    int spins = 0;
    while (atomic_load_explicit(&job_remaining, memory_order_acquire) != 0) {
        CRAFT_PAUSE();
        if (++spins % 64 == 0) sched_yield();
    }
    atomic_flag_clear_explicit(&pool_busy, memory_order_release);
    return 1;
}

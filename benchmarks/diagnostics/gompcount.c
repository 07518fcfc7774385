// Build: gcc -O2 -shared -fPIC -Wl,-soname,libgompcount.so -o /tmp/libgompcount.so gompcount.c -ldl; run a process with LD_PRELOAD=/tmp/libgompcount.so.
// gomp_count() (ctypes / DllImport) then reads the count. libtorch 2.10 (TorchSharp) ships its own libgomp, found by name.
// Counts OpenMP parallel regions (GOMP_parallel calls) opened outside any other region: each one wakes the pool and
// ends at a barrier where waiting threads sleep. Nested calls (a team of one inside a region) are counted apart.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
static atomic_long top, nested;
static void (*real)(void (*)(void *), void *, unsigned, unsigned);
static int (*in_parallel)(void);
long gomp_count(void) { return atomic_load(&top); }
long gomp_nested(void) { return atomic_load(&nested); }
static void *sym(const char *name) {
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) { void *h = dlopen("libgomp-98b21ff3.so.1", RTLD_LAZY | RTLD_NOLOAD); if (h) p = dlsym(h, name); }
    return p;
}
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags) {
    if (!real) { real = sym("GOMP_parallel"); in_parallel = sym("omp_in_parallel"); }
    if (in_parallel()) atomic_fetch_add(&nested, 1); else atomic_fetch_add(&top, 1);
    real(fn, data, num_threads, flags);
}

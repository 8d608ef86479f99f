/* Latency of a library built by `kiln build`: loads it with dlopen (timed, with NAME_init),
 * then times NAME_predict call by call at each batch size and prints one JSON line per batch
 * with the median, the 10th and 90th percentiles in microseconds.
 *
 *   cc -O2 bench/deploy/latency.c -ldl -o latency
 *   ./latency out/libclassifier.so classifier FEATURES CALLS BATCH...
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void *(*init_fn)(void);
typedef int (*predict_fn)(void *, const float *, int64_t, float *);
typedef void (*free_fn)(void *);

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *symbol(void *lib, const char *name, const char *suffix) {
    char full[256];
    snprintf(full, sizeof full, "%s_%s", name, suffix);
    void *s = dlsym(lib, full);
    if (!s) {
        fprintf(stderr, "%s: %s\n", full, dlerror());
        exit(1);
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s LIB.so NAME FEATURES CALLS BATCH...\n", argv[0]);
        return 2;
    }
    const char *name = argv[2];
    long features = atol(argv[3]), calls = atol(argv[4]);
    double t0 = now_us();
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    init_fn init = (init_fn)symbol(lib, name, "init");
    predict_fn predict = (predict_fn)symbol(lib, name, "predict");
    free_fn release = (free_fn)symbol(lib, name, "free");
    void *ctx = init();
    double load = now_us() - t0;
    if (!ctx) return 1;
    printf("{\"runner\": \"library\", \"model\": \"%s\", \"load_us\": %.1f}\n", name, load);

    for (int a = 5; a < argc; a++) {
        long batch = atol(argv[a]);
        float *x = malloc(sizeof(float) * batch * features);
        float *y = malloc(sizeof(float) * batch * 1024);
        for (long i = 0; i < batch * features; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f;
        double *t = malloc(sizeof(double) * calls);
        for (long i = 0; i < calls / 10 + 10; i++) predict(ctx, x, batch, y); /* warm-up */
        for (long i = 0; i < calls; i++) {
            double s = now_us();
            predict(ctx, x, batch, y);
            t[i] = now_us() - s;
        }
        qsort(t, calls, sizeof(double), by_value);
        printf("{\"runner\": \"library\", \"model\": \"%s\", \"batch\": %ld, \"median_us\": %.2f, "
               "\"p10_us\": %.2f, \"p90_us\": %.2f, \"calls\": %ld}\n",
               name, batch, t[calls / 2], t[calls / 10], t[calls * 9 / 10], calls);
        free(x);
        free(y);
        free(t);
    }
    release(ctx);
    return 0;
}

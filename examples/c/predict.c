/* Runs a model built by `kiln build` on a CSV file and prints what `kiln predict` prints.
 *
 *   kiln build m.kiln -o out/                      (writes out/libclassifier.a, out/classifier.h)
 *   cc -O2 examples/c/predict.c -I out out/libclassifier.a -lm -o predict
 *   ./predict data.csv > predictions.csv
 *
 * data.csv: a header line, then one sample per line whose first CLASSIFIER_FEATURES columns are
 * its features as the training data held them (further columns, such as a label, are ignored).
 * The output: `prob_0,…,class` for a classifier, `output_0,…` otherwise, one line per sample.
 *
 * The example is written for a model named `classifier` (the seed model); for another model,
 * replace `classifier` / `CLASSIFIER` with its name (or build with `kiln build --name classifier`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"

/* Reads every sample of `path` into a growing array; returns the number of samples. */
static long read_csv(const char *path, float **out) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    static char line[1 << 20];
    long samples = 0, capacity = 0;
    float *x = NULL;
    if (!fgets(line, sizeof line, f)) { /* the header */
        fclose(f);
        *out = NULL;
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n' || line[0] == '\0') continue;
        if (samples == capacity) {
            capacity = capacity ? 2 * capacity : 256;
            float *grown = realloc(x, (size_t)capacity * CLASSIFIER_FEATURES * sizeof(float));
            if (!grown) {
                free(x);
                fclose(f);
                return -1;
            }
            x = grown;
        }
        char *cell = line;
        for (int j = 0; j < CLASSIFIER_FEATURES; j++) {
            char *end;
            x[samples * CLASSIFIER_FEATURES + j] = strtof(cell, &end);
            if (end == cell) {
                fprintf(stderr, "%s: line %ld: expected %d numbers\n", path, samples + 2,
                        CLASSIFIER_FEATURES);
                free(x);
                fclose(f);
                return -1;
            }
            cell = end + (*end == ',');
        }
        samples++;
    }
    fclose(f);
    *out = x;
    return samples;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA.csv\n", argv[0]);
        return 2;
    }
    float *x;
    long samples = read_csv(argv[1], &x);
    if (samples < 0) return 1;

    classifier_ctx *ctx = classifier_init();
    float *y = malloc((size_t)(samples ? samples : 1) * CLASSIFIER_OUTPUTS * sizeof(float));
    if (!ctx || !y) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    if (classifier_predict(ctx, x, samples, y) != 0) {
        fprintf(stderr, "classifier_predict failed\n");
        return 1;
    }

    const char *prefix = CLASSIFIER_IS_CLASSIFIER ? "prob" : "output";
    for (int k = 0; k < CLASSIFIER_OUTPUTS; k++) printf(k ? ",%s_%d" : "%s_%d", prefix, k);
    printf(CLASSIFIER_IS_CLASSIFIER ? ",class\n" : "\n");
    for (long i = 0; i < samples; i++) {
        const float *row = y + i * CLASSIFIER_OUTPUTS;
        int best = 0;
        for (int k = 0; k < CLASSIFIER_OUTPUTS; k++) {
            /* %.9g: nine significant digits give back the exact float. */
            printf(k ? ",%.9g" : "%.9g", row[k]);
            if (row[k] > row[best]) best = k;
        }
        if (CLASSIFIER_IS_CLASSIFIER) printf(",%d", best);
        printf("\n");
    }
    classifier_free(ctx);
    free(x);
    free(y);
    return 0;
}

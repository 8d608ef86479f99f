/* The transport cost of Kiln's gradient exchange (runtime/mpi.rs) without training around it:
 * an all-to-all of each rank's segments, the owner's weighted sum in rank order (f64), and an
 * all-gather of the sums, on a buffer of N floats, ranks in lockstep (a barrier before each).
 *   mpicc -O2 bench/exchange.c -o /tmp/exchange
 *   mpirun --allow-run-as-root --oversubscribe -n 2 /tmp/exchange 269323 2109451
 * prints the median and minimum milliseconds per exchange for each size. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    enum { REPS = 50 };
    for (int a = 1; a < argc; a++) {
        int len = atoi(argv[a]);
        float *values = calloc(len, sizeof(float));
        int *counts = malloc(ranks * sizeof(int)), *displs = malloc(ranks * sizeof(int));
        for (int r = 0, at = 0; r < ranks; r++) {
            counts[r] = len / ranks + (r < len % ranks);
            displs[r] = at;
            at += counts[r];
        }
        int mine = counts[rank];
        float *pieces = malloc((size_t)mine * ranks * sizeof(float));
        float *sums = malloc(mine * sizeof(float));
        int *rc = malloc(ranks * sizeof(int)), *rd = malloc(ranks * sizeof(int));
        for (int r = 0; r < ranks; r++) {
            rc[r] = mine;
            rd[r] = r * mine;
        }
        double times[REPS];
        for (int i = 0; i < REPS; i++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            MPI_Alltoallv(values, counts, displs, MPI_FLOAT, pieces, rc, rd, MPI_FLOAT,
                          MPI_COMM_WORLD);
            for (int j = 0; j < mine; j++) {
                double sum = 0.0;
                for (int r = 0; r < ranks; r++) sum += (1.0 / ranks) * pieces[r * mine + j];
                sums[j] = (float)sum;
            }
            MPI_Allgatherv(sums, mine, MPI_FLOAT, values, counts, displs, MPI_FLOAT,
                           MPI_COMM_WORLD);
            times[i] = MPI_Wtime() - start;
        }
        qsort(times, REPS, sizeof(double), cmp);
        if (rank == 0)
            printf("%d ranks, %d floats (%.2f MiB): median %.3f ms, min %.3f ms per exchange\n",
                   ranks, len, len * 4.0 / 1048576, times[REPS / 2] * 1e3, times[0] * 1e3);
        free(values); free(counts); free(displs); free(pieces); free(sums); free(rc); free(rd);
    }
    MPI_Finalize();
    return 0;
}

// OpenBLAS called directly from C: the ceiling the native backend is measured against (src/bench/native.ts
// compiles this with `cc -O2 ... -lopenblas` and runs it).
//
//   openblas-direct THREADS MIN_SECONDS SHAPE...     SHAPE = m,n,k,transA,transB (transX is 0 or 1)
//
// Prints `corename <name>`, `config <string>`, then per shape `m n k transA transB best_seconds gflops`.
// Timing matches src/bench/native.ts: after a warm-up call, samples (one call, or a group of calls lasting
// about 1 ms for small shapes) repeat until MIN_SECONDS have passed (at least 3); the fastest counts.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float* random_floats(size_t n, unsigned* seed) {
  float* x = malloc(n * sizeof(float));
  if (!x) {
    fprintf(stderr, "openblas-direct: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; i++) {
    *seed = *seed * 1664525u + 1013904223u;
    x[i] = (float)(*seed >> 8) / (float)(1u << 24) - 0.5f;
  }
  return x;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s THREADS MIN_SECONDS m,n,k,transA,transB ...\n", argv[0]);
    return 2;
  }
  const int threads = atoi(argv[1]);
  const double min_seconds = atof(argv[2]);
  if (threads > 0) openblas_set_num_threads(threads);
  printf("corename %s\nconfig %s\nthreads %d\n", openblas_get_corename(), openblas_get_config(),
         openblas_get_num_threads());
  unsigned seed = 12345;
  for (int s = 3; s < argc; s++) {
    int m, n, k, ta, tb;
    if (sscanf(argv[s], "%d,%d,%d,%d,%d", &m, &n, &k, &ta, &tb) != 5 || m < 1 || n < 1 || k < 1) {
      fprintf(stderr, "openblas-direct: bad shape '%s' (want m,n,k,transA,transB)\n", argv[s]);
      return 2;
    }
    // packed row-major operands: A is m x k (k x m when transposed), B is k x n (n x k)
    float* a = random_floats((size_t)m * k, &seed);
    float* b = random_floats((size_t)k * n, &seed);
    float* c = random_floats((size_t)m * n, &seed);
    const int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
    const CBLAS_TRANSPOSE opA = ta ? CblasTrans : CblasNoTrans, opB = tb ? CblasTrans : CblasNoTrans;
    cblas_sgemm(CblasRowMajor, opA, opB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc); // warm-up
    // small calls are timed in groups of `reps` so the clock does not dominate
    double t0 = now();
    cblas_sgemm(CblasRowMajor, opA, opB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    const double first = now() - t0;
    const int reps = first >= 1e-3 ? 1 : (int)(1e-3 / (first > 1e-8 ? first : 1e-8)) + 1;
    double best = 1e30, total = 0;
    for (int samples = 0; samples < 3 || total < min_seconds; samples++) {
      t0 = now();
      for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, opA, opB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
      const double dt = now() - t0;
      total += dt;
      if (dt / reps < best) best = dt / reps;
    }
    printf("%d %d %d %d %d %.9f %.3f\n", m, n, k, ta, tb, best, 2.0 * m * n * k / best * 1e-9);
    fflush(stdout);
    free(a);
    free(b);
    free(c);
  }
  return 0;
}

//! The matrix products of the three benchmark workloads (`cargo bench --bench gemm`), through
//! Kiln's GEMM driver (`kiln::codegen::gemm`, planned packing buffers, no allocation) and through
//! the `gemm` crate's own entry point (which allocates its packing buffers on each call), reported
//! as GFLOP/s (criterion's "elem/s" counts 2·m·n·k floating-point operations per product). Peak on
//! one Zen 4 core with 256-bit FMA is ~117 GFLOP/s.
//!
//! A dense layer `in → out` at batch `B` runs three products per training step: the forward
//! `x·W` (B×out×in), the weight gradient `xᵀ·dy` (in×out×B) and, except for the first layer, the
//! input gradient `dy·Wᵀ` (B×in×out). Products small enough for the emitted Cranelift kernel are
//! left out (`codegen::emit::matmul`). Products large enough to be split also run on two threads
//! (`kiln_2_threads`). Operands sit in `kiln::buffer::Buffer`s, as in a compiled step (huge pages
//! from 2 MiB); products whose operands are that large also run on plain vectors
//! (`kiln_4k_pages`), which shows what the huge pages are worth.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kiln::buffer::Buffer;
use kiln::codegen::gemm::{self, Gemm};

/// `(name, m, n, k, transpose a, transpose b)` of one training step's products.
fn products(widths: &[usize], batch: usize) -> Vec<(String, usize, usize, usize, bool, bool)> {
    let mut out = Vec::new();
    for (layer, w) in widths.windows(2).enumerate() {
        let (i, o) = (w[0], w[1]);
        out.push((format!("fwd{layer}"), batch, o, i, false, false));
        out.push((format!("dw{layer}"), i, o, batch, true, false));
        if layer > 0 {
            out.push((format!("dx{layer}"), batch, i, o, false, true));
        }
    }
    out.retain(|&(_, m, n, k, _, _)| m * n * k > 2048);
    out
}

fn values(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 997) as f32 / 997.0 - 0.5)
        .collect()
}

fn bench_workload(c: &mut Criterion, name: &str, widths: &[usize], batch: usize) {
    let mut group = c.benchmark_group(format!("gemm_{name}"));
    for (label, m, n, k, ta, tb) in products(widths, batch) {
        let (a, b) = (values(m * k), values(k * n));
        let (paged_a, paged_b) = (
            Buffer::from_slice(&a).unwrap(),
            Buffer::from_slice(&b).unwrap(),
        );
        let mut dst = Buffer::<f32>::zeroed(m * n).unwrap();
        let shape = format!("{label}_{m}x{n}x{k}");
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let mut kiln = Gemm::for_products([(m, n, k)], 1);
        group.bench_function(BenchmarkId::new("kiln", &shape), |bench| {
            bench.iter(|| kiln.matmul(m, n, k, &paged_a, ta, &paged_b, tb, &mut dst))
        });
        if paged_a.is_mapped() || paged_b.is_mapped() {
            let mut plain_dst = vec![0.0; m * n];
            group.bench_function(BenchmarkId::new("kiln_4k_pages", &shape), |bench| {
                bench.iter(|| kiln.matmul(m, n, k, &a, ta, &b, tb, &mut plain_dst))
            });
        }
        group.bench_function(BenchmarkId::new("gemm_crate", &shape), |bench| {
            bench.iter(|| gemm::library_matmul(m, n, k, &paged_a, ta, &paged_b, tb, &mut dst))
        });
        if m * n * k >= gemm::PARALLEL_MIN_MACS {
            let mut kiln2 = Gemm::for_products([(m, n, k)], 2);
            group.bench_function(BenchmarkId::new("kiln_2_threads", &shape), |bench| {
                bench.iter(|| kiln2.matmul(m, n, k, &paged_a, ta, &paged_b, tb, &mut dst))
            });
        }
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_workload(c, "seed", &[32, 64, 64, 10], 32);
    bench_workload(c, "mnist", &[784, 256, 256, 10], 64);
    bench_workload(c, "wide", &[1024, 1024, 1024, 10], 256);
}

criterion_group! {
    name = gemm_shapes;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(20);
    targets = benches
}
criterion_main!(gemm_shapes);

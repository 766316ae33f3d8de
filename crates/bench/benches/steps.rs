//! Decode and tree-verify step times at the fixture's shape and at GPT-B shape (random weights),
//! on both engines (the host engine, the CPU fast path, and burn), plus the machine's physical
//! limits: large-GEMM FLOP/s and memory read bandwidth. `lantern bench` times the same steps
//! through the decoding protocol on real checkpoints.
//!
//! Run with `just bench` (or `cargo bench -p lantern-bench`). Throughput lines read as FLOP/s
//! (GEMM, "elem/s") and bytes/s (memory).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lantern_bench::{model_with_prefix, random_tree, shapes};
use lantern_models::burn::prelude::*;
use lantern_models::cpu::{HostCondition, HostGpt, WeightDtype};
use lantern_models::gpt::repeated_tokens;
use lantern_models::Visibility;

/// The host engine's copy of `gpt` with `prefix` committed tokens for `batch` rows.
fn host_with_prefix(
    gpt: &lantern_models::Gpt,
    batch: usize,
    prefix: usize,
    extra: usize,
) -> (HostGpt, lantern_models::cpu::HostKvCache) {
    let host = HostGpt::from_burn(gpt, WeightDtype::F32);
    let mut cache = host.new_cache(batch, extra);
    host.prefill(&HostCondition::Classes(vec![0; batch]), &mut cache)
        .expect("prefill");
    let v = host.config().vocab_size;
    let tokens: Vec<u32> = (0..prefix).map(|i| (i * 7919 % v) as u32).collect();
    let positions: Vec<usize> = (0..prefix).map(|k| host.position_of_token(k)).collect();
    host.extend(&tokens, &positions, &Visibility::causal(prefix), &mut cache);
    cache.commit_all();
    (host, cache)
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for shape in shapes() {
        for batch in [1, 2] {
            let prefix = shape.config.block_size / 2;
            let (gpt, mut cache) = model_with_prefix(&shape.config, batch, prefix, 8);
            let device = gpt.device();
            let pos = [gpt.position_of_token(prefix)];
            group.bench_function(
                BenchmarkId::new(shape.name, format!("burn/b{batch}")),
                |b| {
                    b.iter(|| {
                        let out = gpt.extend(
                            repeated_tokens(&[1], batch, &device),
                            &pos,
                            &Visibility::causal(1),
                            &mut cache,
                        );
                        cache.discard();
                        black_box(out.logits.into_data())
                    })
                },
            );
            let (host, mut hcache) = host_with_prefix(&gpt, batch, prefix, 8);
            group.bench_function(
                BenchmarkId::new(shape.name, format!("host/b{batch}")),
                |b| {
                    b.iter(|| {
                        let out = host.extend(&[1], &pos, &Visibility::causal(1), &mut hcache);
                        hcache.discard();
                        black_box(out.logits)
                    })
                },
            );
        }
    }
    group.finish();
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for shape in shapes() {
        let prefix = shape.config.block_size * 3 / 4;
        for batch in [1, 2] {
            let (gpt, mut cache) = model_with_prefix(&shape.config, batch, prefix, 72);
            let (host, mut hcache) = host_with_prefix(&gpt, batch, prefix, 72);
            let device = gpt.device();
            for n in [8, 16, 32, 64] {
                let (parents, depth) = random_tree(n, n as u64);
                let vis = Visibility::tree(&parents);
                let positions: Vec<usize> = depth
                    .iter()
                    .map(|d| gpt.position_of_token(prefix + d))
                    .collect();
                let tokens: Vec<u32> = (0..n as u32).collect();
                let id = BenchmarkId::new(format!("{}/burn/b{batch}", shape.name), n);
                group.bench_function(id, |b| {
                    b.iter(|| {
                        let out = gpt.extend(
                            repeated_tokens(&tokens, batch, &device),
                            &positions,
                            &vis,
                            &mut cache,
                        );
                        cache.discard();
                        black_box(out.logits.into_data())
                    })
                });
                let id = BenchmarkId::new(format!("{}/host/b{batch}", shape.name), n);
                group.bench_function(id, |b| {
                    b.iter(|| {
                        let out = host.extend(&tokens, &positions, &vis, &mut hcache);
                        hcache.discard();
                        black_box(out.logits)
                    })
                });
            }
        }
    }
    group.finish();
}

/// Sum with 16 independent accumulators, so the loop is bound by memory, not add latency.
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for c in xs.chunks_exact(16) {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum()
}

fn roofline(c: &mut Criterion) {
    let mut group = c.benchmark_group("roofline");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let device = lantern_models::backend::default_device();
    let n = 1024;
    let a = Tensor::<2>::random(
        [n, n],
        lantern_models::burn::tensor::Distribution::Default,
        &device,
    );
    let b = Tensor::<2>::random(
        [n, n],
        lantern_models::burn::tensor::Distribution::Default,
        &device,
    );
    group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    group.bench_function("gemm_1024_flop", |bench| {
        bench.iter(|| black_box(a.clone().matmul(b.clone()).into_data()))
    });
    let len = 64 << 20; // 256 MiB of f32
    let big: Vec<f32> = (0..len).map(|i| (i % 97) as f32).collect();
    group.throughput(Throughput::Bytes((len * 4) as u64));
    group.bench_function("read_256MiB_1thread", |bench| {
        bench.iter(|| black_box(sum(&big)))
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    group.bench_function(format!("read_256MiB_{threads}threads"), |bench| {
        bench.iter(|| {
            let chunk = big.len().div_ceil(threads);
            std::thread::scope(|s| {
                let parts: Vec<_> = big.chunks(chunk).map(|c| s.spawn(move || sum(c))).collect();
                black_box(parts.into_iter().map(|p| p.join().unwrap()).sum::<f32>())
            })
        })
    });
    group.finish();
}

/// The host engine's packed skinny products against the `gemm` crate (what burn's CPU backend
/// calls, here with explicit rayon parallelism over every core) on decode- and verify-sized
/// products: rows m × (k → n).
fn kernels(c: &mut Criterion) {
    use lantern_models::cpu::matmul::{matmul, PackedMatrix, WeightDtype};
    let mut group = c.benchmark_group("kernels");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for &(k, n) in &[(256usize, 768usize), (768, 2304), (768, 4096), (2048, 768)] {
        let w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let packed = PackedMatrix::pack(&w, k, n, None, WeightDtype::F32);
        for m in [1usize, 2, 16, 64] {
            let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
            let mut out = vec![0f32; m * n];
            group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
            group.bench_function(BenchmarkId::new(format!("host/{k}x{n}"), m), |b| {
                b.iter(|| matmul(black_box(&x), m, &packed, &mut out, false))
            });
            group.bench_function(BenchmarkId::new(format!("gemm/{k}x{n}"), m), |b| {
                b.iter(|| unsafe {
                    // out[m, n] = x[m, k] · w[k, n], all row-major.
                    gemm::gemm(
                        m,
                        n,
                        k,
                        out.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        black_box(x.as_ptr()),
                        1,
                        k as isize,
                        w.as_ptr(),
                        1,
                        n as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(threads),
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decode, verify, kernels, roofline);
criterion_main!(benches);

//! The machine's limits as the host engine meets them: streaming-read bandwidth over the CPU
//! team at a given working-set size (a model whose weights fit the last-level cache streams
//! them faster than one that reads DRAM), and the f32 product peak of the [`super::matmul`]
//! kernels. A step's floor is the larger of its bytes over the bandwidth at its working set and
//! its multiply-adds over the peak.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::matmul::{matmul, PackedMatrix, WeightDtype};
use super::pool::{team, Team};

/// Measured limits of this machine for one working-set size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// Bytes of the working set the bandwidth was measured on.
    pub working_set: usize,
    /// Streaming read of a buffer of `working_set` bytes, read again and again (warm), all team
    /// threads, GB/s.
    pub read_gbps: f64,
    /// Largest f32 product rate of the kernels (a 64 × 1024 × 1024 product), GFLOP/s.
    pub peak_gflops: f64,
    /// Threads used.
    pub threads: usize,
}

impl Roofline {
    /// The floor of a step that streams `bytes` (of this working set) and does `macs`
    /// multiply-adds, in ms.
    pub fn floor_ms(&self, bytes: usize, macs: usize) -> f64 {
        let mem = bytes as f64 / (self.read_gbps * 1e9);
        let compute = 2.0 * macs as f64 / (self.peak_gflops * 1e9);
        mem.max(compute) * 1e3
    }
}

/// Sum with 16 independent accumulators (bound by memory, not by add latency).
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for c in xs.chunks_exact(16) {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum()
}

/// Measures the roofline for a working set of `bytes` (at least 1 MiB): the best of
/// `repeats` warm reads of it, and the best of `4 · repeats` products.
pub fn measure(bytes: usize, repeats: usize) -> Roofline {
    let len = bytes.max(1 << 20) / 4; // f32 values
    let big: Vec<f32> = (0..len).map(|i| (i % 97) as f32).collect();
    let t = team();
    let mut best = f64::MAX;
    for r in 0..=repeats.max(1) {
        let start = Instant::now();
        t.run(&|i, n| {
            std::hint::black_box(sum(&big[Team::part(len, i, n)]));
        });
        if r > 0 {
            best = best.min(start.elapsed().as_secs_f64());
        }
    }
    let read_gbps = (len * 4) as f64 / best / 1e9;
    let (m, k, n) = (64, 1024, 1024);
    let w: Vec<f32> = (0..k * n)
        .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
        .collect();
    let p = PackedMatrix::pack(&w, k, n, None, WeightDtype::F32);
    let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
    let mut out = vec![0f32; m * n];
    matmul(&x, m, &p, &mut out, false);
    let mut best = f64::MAX;
    for _ in 0..repeats.max(1) * 4 {
        let start = Instant::now();
        matmul(&x, m, &p, &mut out, false);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Roofline {
        working_set: len * 4,
        read_gbps,
        peak_gflops: 2.0 * (m * k * n) as f64 / best / 1e9,
        threads: t.threads(),
    }
}

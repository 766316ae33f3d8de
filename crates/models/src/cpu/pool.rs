//! The CPU team: a fixed set of threads that run one job at a time, split by thread index.
//!
//! A decode step of a small model is a few dozen parallel sections of 5–50 µs each, so the cost
//! of starting a section matters as much as the section itself. The workers spin for a short
//! while after each job (a new job then starts in well under a microsecond) and park after
//! [`SPIN`] of idleness, so an idle process costs nothing. One job runs at a time: a caller that
//! finds the team busy (another thread, e.g. a parallel test) runs its job alone instead of
//! waiting.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
pub const SPIN: Duration = Duration::from_micros(200);

/// A job: called once per thread with `(thread index, thread count)`.
type Job = dyn Fn(usize, usize) + Sync;

struct Shared {
    /// Bumped once per job; workers run each epoch exactly once.
    epoch: AtomicU64,
    /// The running job (valid from the epoch bump until `pending` returns to 0).
    job: UnsafeCell<Option<*const Job>>,
    /// Workers that have not finished the current job.
    pending: AtomicUsize,
    /// Per worker: parked (or about to park) and needing an unpark.
    sleeping: Vec<AtomicBool>,
    panicked: AtomicBool,
    shutdown: AtomicBool,
}

// SAFETY: `job` is written by the one thread holding the team's lock before the epoch bump
// (release) and read by workers after they observe it (acquire); it is never written while a
// worker may read it, because the writer waits for `pending == 0` before the next job.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// A team of `threads()` threads (the caller counts as thread 0).
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    lock: Mutex<()>,
}

impl Team {
    /// A team of `threads` threads in total (at least 1): the caller and `threads − 1` workers.
    pub fn new(threads: usize) -> Self {
        let workers = threads.max(1) - 1;
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            pending: AtomicUsize::new(0),
            sleeping: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let workers = (0..workers)
            .map(|w| {
                let shared = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("lantern-cpu-{}", w + 1))
                    .spawn(move || worker(&shared, w, threads))
                    .expect("spawn a CPU team thread")
            })
            .collect();
        Self {
            shared,
            workers,
            lock: Mutex::new(()),
        }
    }

    /// Threads a job is split over.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job(t, n)` for every thread `t < n` and returns when all have finished. When the
    /// team is busy with another caller's job, runs `job(0, 1)` on this thread instead.
    pub fn run(&self, job: &(dyn Fn(usize, usize) + Sync)) {
        let n = self.threads();
        let guard = match self.lock.try_lock() {
            Ok(g) if n > 1 => g,
            _ => return job(0, 1),
        };
        let s = &*self.shared;
        // SAFETY: only the lifetime is erased; the pointer is used only until `pending` is 0,
        // which `Wait` below ensures before this function returns or unwinds.
        let ptr: *const Job =
            unsafe { std::mem::transmute(job as *const (dyn Fn(usize, usize) + Sync)) };
        s.pending.store(n - 1, Ordering::Relaxed);
        // SAFETY: no worker reads `job` until it observes the epoch bump below.
        unsafe { *s.job.get() = Some(ptr) };
        s.epoch.fetch_add(1, Ordering::SeqCst);
        for (w, handle) in self.workers.iter().enumerate() {
            if s.sleeping[w].load(Ordering::SeqCst) {
                handle.thread().unpark();
            }
        }
        let wait = Wait(s);
        job(0, n);
        drop(wait);
        drop(guard);
        if s.panicked.swap(false, Ordering::SeqCst) {
            panic!("a CPU team worker panicked in a parallel section");
        }
    }

    /// Splits `0..len` into `n` nearly equal contiguous parts and returns part `t`.
    pub fn part(len: usize, t: usize, n: usize) -> std::ops::Range<usize> {
        (len * t / n)..(len * (t + 1) / n)
    }
}

/// Waits (on drop, so also while unwinding) until every worker has finished the current job.
struct Wait<'a>(&'a Shared);

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let mut spins = 0u32;
        while self.0.pending.load(Ordering::Acquire) != 0 {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                thread::yield_now(); // an oversubscribed machine: let the worker run
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for w in self.workers.drain(..) {
            w.thread().unpark();
            let _ = w.join();
        }
    }
}

fn worker(s: &Shared, w: usize, n: usize) {
    let mut seen = 0u64;
    loop {
        let mut idle_since = Instant::now();
        let mut spins = 0u32;
        loop {
            let e = s.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            if s.shutdown.load(Ordering::Relaxed) {
                return;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(256) {
                std::hint::spin_loop();
                continue;
            }
            if idle_since.elapsed() < SPIN {
                continue;
            }
            s.sleeping[w].store(true, Ordering::SeqCst);
            if s.epoch.load(Ordering::SeqCst) == seen && !s.shutdown.load(Ordering::SeqCst) {
                thread::park();
            }
            s.sleeping[w].store(false, Ordering::SeqCst);
            idle_since = Instant::now();
        }
        // SAFETY: the job pointer was published before the epoch we observed (acquire) and
        // stays valid until we decrement `pending`.
        let job = unsafe { (*s.job.get()).expect("a job with the epoch") };
        let job = unsafe { &*job };
        if catch_unwind(AssertUnwindSafe(|| job(w + 1, n))).is_err() {
            s.panicked.store(true, Ordering::SeqCst);
        }
        s.pending.fetch_sub(1, Ordering::Release);
    }
}

/// The process-wide team, sized by [`crate::backend::cpu_threads`] (`RAYON_NUM_THREADS`).
pub fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| Team::new(crate::backend::cpu_threads()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_each_job_once() {
        let team = Team::new(3);
        for round in 0..200 {
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            team.run(&|t, n| {
                assert_eq!(n, 3);
                hits[t].fetch_add(round + 1, Ordering::SeqCst);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == round + 1));
            if round % 50 == 0 {
                thread::sleep(SPIN * 2); // let the workers park, then wake them
            }
        }
    }

    #[test]
    fn parts_cover_the_range() {
        let parts: Vec<_> = (0..3).map(|t| Team::part(10, t, 3)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
    }

    #[test]
    fn a_worker_panic_reaches_the_caller_and_the_team_survives() {
        let team = Team::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            team.run(&|t, _| assert_ne!(t, 1, "worker fails"));
        }));
        assert!(r.is_err());
        let sum = AtomicUsize::new(0);
        team.run(&|t, _| {
            sum.fetch_add(t + 1, Ordering::SeqCst);
        });
        assert_eq!(sum.load(Ordering::SeqCst), 3);
    }
}

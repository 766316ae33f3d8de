//! Which kernel family the running CPU can use, detected once (override with
//! `LANTERN_CPU_ISA=avx512|avx2|portable`, e.g. to test or time a narrower family).

use std::sync::OnceLock;

/// A family of host kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F/BW/VL (with AVX2, FMA and F16C).
    Avx512,
    /// AVX2 with FMA and F16C.
    Avx2,
    /// Plain Rust (any CPU).
    Portable,
}

impl Isa {
    /// The name used by `LANTERN_CPU_ISA` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Portable => "portable",
        }
    }
}

/// The families this CPU can run, widest first.
pub fn available() -> Vec<Isa> {
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        if avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
        {
            out.push(Isa::Avx512);
        }
        if avx2 {
            out.push(Isa::Avx2);
        }
    }
    out.push(Isa::Portable);
    out
}

/// The family in use: the widest available, or `LANTERN_CPU_ISA` if it names an available one.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let avail = available();
        match std::env::var("LANTERN_CPU_ISA") {
            Ok(name) => *avail.iter().find(|i| i.name() == name).unwrap_or_else(|| {
                panic!(
                    "LANTERN_CPU_ISA={name} is not available on this CPU; available: {}",
                    avail
                        .iter()
                        .map(|i| i.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
            Err(_) => avail[0],
        }
    })
}

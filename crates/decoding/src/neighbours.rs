//! LANTERN's latent-neighbour table: for each code, the nearest other codes of the VQ codebook.

use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8; 4] = b"LNBR";
const VERSION: u32 = 1;

/// For each code, its `k_max` nearest other codes by L2 distance between RAW (un-normalised)
/// codebook rows, closest first, ties broken by lower index; a code is never its own neighbour.
#[derive(Clone, Debug, PartialEq)]
pub struct NeighbourTable {
    vocab: usize,
    k_max: usize,
    idx: Vec<u32>,
}

impl NeighbourTable {
    /// Builds the table from a row-major `[vocab, dim]` codebook (`k_max` clamps to `vocab − 1`).
    pub fn build(codebook: &[f32], vocab: usize, dim: usize, k_max: usize) -> Self {
        assert_eq!(codebook.len(), vocab * dim, "codebook is not [vocab, dim]");
        let k_max = k_max.min(vocab.saturating_sub(1));
        let row = |i: usize| &codebook[i * dim..(i + 1) * dim];
        let mut idx = Vec::with_capacity(vocab * k_max);
        let mut cand: Vec<(f64, u32)> = Vec::with_capacity(vocab);
        for x in 0..vocab {
            let a = row(x);
            cand.clear();
            cand.extend((0..vocab).filter(|&y| y != x).map(|y| {
                let d: f64 = a
                    .iter()
                    .zip(row(y))
                    .map(|(&p, &q)| ((p - q) as f64).powi(2))
                    .sum();
                (d, y as u32)
            }));
            let cmp = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            if k_max < cand.len() && k_max > 0 {
                cand.select_nth_unstable_by(k_max - 1, cmp);
            }
            cand.truncate(k_max);
            cand.sort_by(cmp);
            idx.extend(cand.iter().map(|c| c.1));
        }
        Self { vocab, k_max, idx }
    }

    /// The `k_max` neighbours of code `x`, closest first.
    pub fn neighbours(&self, x: usize) -> &[u32] {
        &self.idx[x * self.k_max..(x + 1) * self.k_max]
    }

    /// Neighbours stored per code.
    pub fn k_max(&self) -> usize {
        self.k_max
    }

    /// Codebook size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// FNV-1a 64 fingerprint of the codebook bytes, vocab, dim and k_max.
    pub fn fingerprint(codebook: &[f32], vocab: usize, dim: usize, k_max: usize) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h = (h ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for v in codebook {
            eat(&v.to_le_bytes());
        }
        for n in [vocab, dim, k_max] {
            eat(&(n as u64).to_le_bytes());
        }
        h
    }

    /// Writes the cache file: magic, version, vocab, k_max, fingerprint, u32 indices (LE).
    pub fn save(&self, path: &Path, fingerprint: u64) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            f.write_all(MAGIC)?;
            f.write_all(&VERSION.to_le_bytes())?;
            f.write_all(&(self.vocab as u64).to_le_bytes())?;
            f.write_all(&(self.k_max as u64).to_le_bytes())?;
            f.write_all(&fingerprint.to_le_bytes())?;
            for &i in &self.idx {
                f.write_all(&i.to_le_bytes())?;
            }
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(tmp, path)
    }

    /// Reads a cache file: `Ok(None)` if it belongs to another codebook or k_max, `Err` if corrupt.
    pub fn load(path: &Path, fingerprint: u64) -> std::io::Result<Option<Self>> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)?.read_to_end(&mut bytes)?;
        let bad = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: corrupt neighbour table ({what})", path.display()),
            )
        };
        if bytes.len() < 32 || &bytes[..4] != MAGIC {
            return Err(bad("bad header"));
        }
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let (vocab, k_max, fp) = (u64_at(8) as usize, u64_at(16) as usize, u64_at(24));
        if version != VERSION || fp != fingerprint {
            return Ok(None);
        }
        if bytes.len() != 32 + vocab * k_max * 4 {
            return Err(bad("wrong length"));
        }
        let idx = bytes[32..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(Some(Self { vocab, k_max, idx }))
    }

    /// Loads the cache at `path` if it matches this codebook and k_max, else builds and writes it.
    pub fn cached(
        path: &Path,
        codebook: &[f32],
        vocab: usize,
        dim: usize,
        k_max: usize,
    ) -> std::io::Result<Self> {
        let k_max = k_max.min(vocab.saturating_sub(1));
        let fp = Self::fingerprint(codebook, vocab, dim, k_max);
        if path.is_file() {
            if let Some(t) = Self::load(path, fp)? {
                return Ok(t);
            }
        }
        let t = Self::build(codebook, vocab, dim, k_max);
        t.save(path, fp)?;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_brute_force_with_ties_and_no_self() {
        // Codes on a line: 0, 1, 2, 3 (and 5 equidistant from 4 and 6 ties).
        let cb = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let t = NeighbourTable::build(&cb, 7, 1, 3);
        assert_eq!(t.neighbours(0), &[1, 2, 3]);
        assert_eq!(t.neighbours(5), &[4, 6, 3]);
        assert_eq!(t.neighbours(3), &[2, 4, 1]);
        let mut seed = 3u64;
        let cb: Vec<f32> = (0..40 * 3)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((seed >> 40) % 100) as f32 / 10.0
            })
            .collect();
        let t = NeighbourTable::build(&cb, 40, 3, 39);
        for x in 0..40 {
            let mut all: Vec<(f64, u32)> = (0..40u32)
                .filter(|&y| y as usize != x)
                .map(|y| {
                    let d = (0..3)
                        .map(|j| ((cb[x * 3 + j] - cb[y as usize * 3 + j]) as f64).powi(2))
                        .sum::<f64>();
                    (d, y)
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = all.iter().map(|a| a.1).collect();
            assert_eq!(t.neighbours(x), want.as_slice());
        }
    }

    #[test]
    fn cache_round_trip_and_rebuild_on_mismatch() {
        let dir = std::env::temp_dir().join(format!("nbr-{}", std::process::id()));
        let path = dir.join("t.bin");
        let cb = [0.0f32, 1.0, 3.0, 7.0];
        let a = NeighbourTable::cached(&path, &cb, 4, 1, 2).unwrap();
        let fp = NeighbourTable::fingerprint(&cb, 4, 1, 2);
        assert_eq!(NeighbourTable::load(&path, fp).unwrap(), Some(a.clone()));
        assert_eq!(NeighbourTable::load(&path, fp ^ 1).unwrap(), None);
        let cb2 = [0.0f32, 9.0, 3.0, 7.0];
        let b = NeighbourTable::cached(&path, &cb2, 4, 1, 2).unwrap();
        assert_eq!(b, NeighbourTable::build(&cb2, 4, 1, 2));
        std::fs::write(&path, b"LNBRjunk").unwrap();
        assert!(NeighbourTable::load(&path, fp).is_err());
        assert_eq!(NeighbourTable::build(&cb, 4, 1, 10).k_max(), 3);
    }
}

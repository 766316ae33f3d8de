//! The host engine's KV cache: the same slot protocol as [`crate::KvCache`] ([`Slots`]), with
//! keys and values in one host buffer per kind, written in place. Keys are stored transposed per
//! head (`[head_dim][capacity]`), so that attention scores many keys per vector instruction;
//! values slot-major (`[capacity][head_dim]`).

use crate::cache::Slots;

/// Keys `[layer][batch][kv_head][head_dim][capacity]` and values
/// `[layer][batch][kv_head][capacity][head_dim]`, plus the slot bookkeeping. The capacity is a
/// multiple of 16, so a block of 16 key columns never leaves a head.
#[derive(Debug, Clone)]
pub struct HostKvCache {
    slots: Slots,
    layers: usize,
    heads: usize,
    head_dim: usize,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl std::ops::Deref for HostKvCache {
    type Target = Slots;
    fn deref(&self) -> &Slots {
        &self.slots
    }
}

impl std::ops::DerefMut for HostKvCache {
    fn deref_mut(&mut self) -> &mut Slots {
        &mut self.slots
    }
}

impl HostKvCache {
    /// Zeroed buffers for `layers` layers of `batch` rows and at least `capacity` slots.
    pub fn new(
        layers: usize,
        batch: usize,
        heads: usize,
        head_dim: usize,
        capacity: usize,
    ) -> Self {
        let capacity = capacity.div_ceil(16) * 16;
        let len = layers * batch * heads * capacity * head_dim;
        Self {
            slots: Slots::new(batch, capacity),
            layers,
            heads,
            head_dim,
            k: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    /// One cache of `sources.len()` rows from batch-1 caches of the same shape, with room for
    /// `capacity` slots: row r holds source r's committed slots from slot 0, then padding (keys
    /// no later token sees) up to the longest source, whose length is committed. Each source's
    /// tokens keep their slots, so a forward over both rows equals one over each source.
    pub fn stack(sources: &[&HostKvCache], capacity: usize) -> Self {
        let first = sources.first().expect("at least one cache to stack");
        let len = sources.iter().map(|c| c.len()).max().unwrap_or(0);
        let mut out = Self::new(
            first.layers,
            sources.len(),
            first.heads,
            first.head_dim,
            capacity.max(len),
        );
        let (hd, cap) = (out.head_dim, out.slots.capacity());
        for (r, src) in sources.iter().enumerate() {
            assert!(
                src.batch() == 1
                    && (src.layers, src.heads, src.head_dim)
                        == (first.layers, first.heads, first.head_dim),
                "stacked caches are batch-1 caches of one shape"
            );
            let (n, src_cap) = (src.len(), src.slots.capacity());
            for l in 0..out.layers {
                for h in 0..out.heads {
                    let (o, so) = (out.block(l, r, h), src.block(l, 0, h));
                    out.v[o..o + n * hd].copy_from_slice(&src.v[so..so + n * hd]);
                    for d in 0..hd {
                        out.k[o + d * cap..o + d * cap + n]
                            .copy_from_slice(&src.k[so + d * src_cap..so + d * src_cap + n]);
                    }
                }
            }
        }
        out.slots.advance(len);
        out.slots.commit_all();
        let valid: Vec<Vec<bool>> = sources
            .iter()
            .map(|c| (0..len).map(|s| s < c.len()).collect())
            .collect();
        if valid.iter().any(|row| row.contains(&false)) {
            out.slots.set_key_valid(Some(valid));
        }
        out
    }

    /// Offset of the `(layer, row, head)` block (keys and values alike).
    #[inline]
    fn block(&self, layer: usize, row: usize, head: usize) -> usize {
        ((layer * self.slots.batch() + row) * self.heads + head)
            * self.slots.capacity()
            * self.head_dim
    }

    /// Transposed keys `[head_dim][capacity]` and values `[capacity][head_dim]` of one
    /// `(layer, row, head)`.
    pub(crate) fn head(&self, layer: usize, row: usize, head: usize) -> (&[f32], &[f32]) {
        let o = self.block(layer, row, head);
        let len = self.slots.capacity() * self.head_dim;
        (&self.k[o..o + len], &self.v[o..o + len])
    }

    /// Writes the key and value of one `(layer, row, head)` at `slot`.
    pub(crate) fn write(
        &mut self,
        layer: usize,
        row: usize,
        head: usize,
        slot: usize,
        k: &[f32],
        v: &[f32],
    ) {
        let (o, cap, hd) = (
            self.block(layer, row, head),
            self.slots.capacity(),
            self.head_dim,
        );
        for (d, &x) in k.iter().enumerate() {
            self.k[o + d * cap + slot] = x;
        }
        self.v[o + slot * hd..o + (slot + 1) * hd].copy_from_slice(v);
    }

    /// Keeps the pending tokens at `keep` (indices into the pending block, in the order given),
    /// moved to the slots right after the committed prefix; drops the rest.
    pub fn commit(&mut self, keep: &[usize]) {
        let base = self.slots.len();
        if self.slots.commit(keep).is_empty() {
            return;
        }
        let (hd, cap, m) = (self.head_dim, self.slots.capacity(), keep.len());
        let mut tmp = vec![0f32; m * hd];
        for l in 0..self.layers {
            for r in 0..self.slots.batch() {
                for h in 0..self.heads {
                    let o = self.block(l, r, h);
                    // Values: slot-major rows.
                    for (t, &i) in keep.iter().enumerate() {
                        let s = o + (base + i) * hd;
                        tmp[t * hd..(t + 1) * hd].copy_from_slice(&self.v[s..s + hd]);
                    }
                    self.v[o + base * hd..o + (base + m) * hd].copy_from_slice(&tmp);
                    // Keys: one column per slot in every head-dim row.
                    for d in 0..hd {
                        let row = &mut self.k[o + d * cap..o + (d + 1) * cap];
                        for (t, &i) in keep.iter().enumerate() {
                            tmp[t] = row[base + i];
                        }
                        row[base..base + m].copy_from_slice(&tmp[..m]);
                    }
                }
            }
        }
    }
}

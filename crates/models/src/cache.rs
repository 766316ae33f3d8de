//! Key/value cache built for speculative decoding.
//!
//! Slots and rotary positions are separate: a forward writes its tokens into the next free
//! slots (after the committed prefix and anything pending), while each token's rotary position
//! is passed in by the caller (tree tokens at the same depth share one). Tokens written by a
//! forward stay *pending* until [`KvCache::commit`] keeps a subset of them (the accepted path),
//! moving their entries into contiguous slots right after the committed prefix, or
//! [`KvCache::discard`] drops them.

use burn::prelude::*;
use burn::tensor::TensorData;

/// Slot bookkeeping shared by the burn and host caches: which slots are committed, which are
/// pending after the last forwards, and the conditioning slots' validity.
#[derive(Debug, Clone)]
pub struct Slots {
    batch: usize,
    capacity: usize,
    committed: usize,
    pending: usize,
    key_valid: Option<Vec<Vec<bool>>>,
}

impl Slots {
    /// An empty sequence of `batch` rows with room for `capacity` slots.
    pub fn new(batch: usize, capacity: usize) -> Self {
        Self {
            batch,
            capacity,
            committed: 0,
            pending: 0,
            key_valid: None,
        }
    }

    /// Batch rows.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Slots available in total.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Committed slots (the prefix every later token sees).
    pub fn len(&self) -> usize {
        self.committed
    }

    /// Whether nothing is committed.
    pub fn is_empty(&self) -> bool {
        self.committed == 0
    }

    /// Slots written after the committed prefix and not yet committed or discarded.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Per-row validity of the conditioning slots (t2i caption padding), if any.
    pub fn key_valid(&self) -> Option<&[Vec<bool>]> {
        self.key_valid.as_deref()
    }

    /// Records which conditioning slots are real (true) or padding, per batch row.
    pub fn set_key_valid(&mut self, key_valid: Option<Vec<Vec<bool>>>) {
        if let Some(kv) = &key_valid {
            assert_eq!(kv.len(), self.batch, "one key-validity row per batch row");
        }
        self.key_valid = key_valid;
    }

    /// Checks that `n` more tokens fit and returns the first slot they will occupy.
    pub fn reserve(&self, n: usize) -> usize {
        let start = self.committed + self.pending;
        assert!(
            start + n <= self.capacity,
            "KV cache full: {} committed + {} pending + {n} new > capacity {}",
            self.committed,
            self.pending,
            self.capacity
        );
        start
    }

    /// Marks `n` freshly written slots as pending (after every layer has written them).
    pub fn advance(&mut self, n: usize) {
        self.pending += n;
    }

    /// Commits the pending tokens at `keep` (indices into the pending block, in order) and
    /// returns the slot moves `(from, to)` the storage must make (none when they are in place).
    pub fn commit(&mut self, keep: &[usize]) -> Vec<(usize, usize)> {
        assert!(
            keep.iter().all(|&i| i < self.pending),
            "commit index out of the pending block ({keep:?}, {} pending)",
            self.pending
        );
        let base = self.committed;
        let moves = keep
            .iter()
            .enumerate()
            .filter(|(i, &k)| *i != k)
            .map(|(i, &k)| (base + k, base + i))
            .collect();
        self.committed += keep.len();
        self.pending = 0;
        moves
    }

    /// Commits every pending token in order (plain decoding).
    pub fn commit_all(&mut self) {
        self.committed += self.pending;
        self.pending = 0;
    }

    /// Drops every pending token.
    pub fn discard(&mut self) {
        self.pending = 0;
    }

    /// Forgets everything after the first `len` committed slots.
    pub fn truncate(&mut self, len: usize) {
        assert!(
            len <= self.committed,
            "cannot truncate {} slots to {len}",
            self.committed
        );
        self.committed = len;
        self.pending = 0;
    }

    /// Empties the sequence (storage is reused, not cleared: unwritten slots are never read).
    pub fn reset(&mut self) {
        self.committed = 0;
        self.pending = 0;
        self.key_valid = None;
    }
}

/// Per-layer key and value buffers, `[B, H_kv, capacity, head_dim]` each.
#[derive(Debug)]
struct LayerKv {
    k: Tensor<4>,
    v: Tensor<4>,
}

/// Preallocated KV cache for one model and one batch (CFG rows included).
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<Option<LayerKv>>,
    slots: Slots,
}

impl std::ops::Deref for KvCache {
    type Target = Slots;
    fn deref(&self) -> &Slots {
        &self.slots
    }
}

impl std::ops::DerefMut for KvCache {
    fn deref_mut(&mut self) -> &mut Slots {
        &mut self.slots
    }
}

impl KvCache {
    /// Zeroed buffers for `n_layer` layers.
    pub fn new(
        n_layer: usize,
        batch: usize,
        kv_heads: usize,
        head_dim: usize,
        capacity: usize,
        device: &Device,
    ) -> Self {
        let capacity = capacity.div_ceil(8) * 8;
        let layers = (0..n_layer)
            .map(|_| {
                Some(LayerKv {
                    k: Tensor::zeros([batch, kv_heads, capacity, head_dim], device),
                    v: Tensor::zeros([batch, kv_heads, capacity, head_dim], device),
                })
            })
            .collect();
        Self {
            layers,
            slots: Slots::new(batch, capacity),
        }
    }

    /// Writes `k, v: [B, H_kv, n, hd]` for layer `layer` into the next free slots and returns
    /// the keys and values of every slot up to and including them. Call [`Slots::advance`]
    /// once all layers are written.
    pub(crate) fn write(
        &mut self,
        layer: usize,
        k: Tensor<4>,
        v: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [b, h, n, hd] = k.dims();
        let start = self.slots.reserve(n);
        let end = start + n;
        let kv = self.layers[layer].take().expect("layer buffers present");
        let k_buf = kv.k.slice_assign([0..b, 0..h, start..end, 0..hd], k);
        let v_buf = kv.v.slice_assign([0..b, 0..h, start..end, 0..hd], v);
        let keys = k_buf.clone().slice([0..b, 0..h, 0..end, 0..hd]);
        let values = v_buf.clone().slice([0..b, 0..h, 0..end, 0..hd]);
        self.layers[layer] = Some(LayerKv { k: k_buf, v: v_buf });
        (keys, values)
    }

    /// Keeps the pending tokens at `keep` (indices into the pending block, in the order given)
    /// by moving them to the slots right after the committed prefix, and drops the rest.
    pub fn commit(&mut self, keep: &[usize]) {
        let base = self.slots.len();
        let m = keep.len();
        if self.slots.commit(keep).is_empty() {
            return;
        }
        // One index upload for every layer.
        let device = self.layers[0]
            .as_ref()
            .expect("layer buffers present")
            .k
            .device();
        let idx: Vec<i64> = keep.iter().map(|&i| (base + i) as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [m]), &device);
        for slot in self.layers.iter_mut() {
            let kv = slot.take().expect("layer buffers present");
            let [b, h, _, hd] = kv.k.dims();
            let k_sel = kv.k.clone().select(2, idx.clone());
            let v_sel = kv.v.clone().select(2, idx.clone());
            let range = [0..b, 0..h, base..base + m, 0..hd];
            *slot = Some(LayerKv {
                k: kv.k.slice_assign(range.clone(), k_sel),
                v: kv.v.slice_assign(range, v_sel),
            });
        }
    }
}

//! Classifier-free guidance and the temperature / top-k / top-p warpers, over logit rows.

use serde::{Deserialize, Serialize};

/// Order in which top-k and top-p are applied after temperature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WarpOrder {
    /// LlamaGen `sample`: temperature, top-k, top-p (the default).
    TopKThenTopP,
    /// Hugging Face processors as LANTERN's speculative path builds them: temperature, top-p, top-k.
    TopPThenTopK,
}

impl WarpOrder {
    /// Parses `top-k-then-top-p` (LlamaGen's order) or `top-p-then-top-k` (LANTERN's
    /// speculative path, Hugging Face processors).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "top-k-then-top-p" => Ok(Self::TopKThenTopP),
            "top-p-then-top-k" => Ok(Self::TopPThenTopK),
            other => Err(format!(
                "warp order '{other}' is not known; allowed: top-k-then-top-p (LlamaGen, default), top-p-then-top-k (LANTERN's speculative path)"
            )),
        }
    }

    /// The name as written in configs and records.
    pub fn name(self) -> &'static str {
        match self {
            Self::TopKThenTopP => "top-k-then-top-p",
            Self::TopPThenTopK => "top-p-then-top-k",
        }
    }
}

/// How the sampling temperature is chosen per token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemperatureRule {
    /// The configured temperature for every token.
    #[default]
    Fixed,
    /// Entropy-aware (ARsample, NeurIPS 2025): after CFG and top-k/top-p at temperature 1, the
    /// entropy H (nats) of the filtered distribution sets `T = T0 · (2.5·e^(−H/3) + 0.6)`, with
    /// `T0` the configured temperature; flat tokens get a lower temperature, peaked ones a
    /// higher one. It changes the target, not the acceptance: every strategy verifies against it.
    Entropy,
}

impl TemperatureRule {
    /// Parses `fixed` or `entropy`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "fixed" => Ok(Self::Fixed),
            "entropy" => Ok(Self::Entropy),
            other => Err(format!(
                "temperature rule '{other}' is not known; allowed: fixed (default), entropy"
            )),
        }
    }

    /// The name as written in configs and records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::Entropy => "entropy",
        }
    }

    fn is_fixed(&self) -> bool {
        *self == Self::Fixed
    }
}

/// Sampling settings of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Temperature (≤ 1e-5 = greedy).
    pub temperature: f32,
    /// Top-k filter (0 = off).
    pub top_k: usize,
    /// Top-p filter (1 = off).
    pub top_p: f32,
    /// CFG scale (≤ 1 = no unconditional half).
    pub cfg_scale: f32,
    /// LlamaGen's cfg_interval: `None` = guide every token; `Some(i)` = token k uses cond logits
    /// only once k > i + 1.
    pub cfg_interval: Option<usize>,
    /// Order of top-k and top-p.
    pub warp_order: WarpOrder,
    /// Fixed temperature, or entropy-aware with `temperature` as T0 (absent from run identities
    /// when fixed, so earlier run ids stay).
    #[serde(default, skip_serializing_if = "TemperatureRule::is_fixed")]
    pub temperature_rule: TemperatureRule,
}

impl Sampling {
    /// Greedy when temperature ≤ 1e-5 (argmax; LANTERN's threshold).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 1e-5
    }

    /// Whether the model should run the unconditional CFG half at all (cfg_scale > 1, as LlamaGen).
    pub fn uses_cfg(&self) -> bool {
        self.cfg_scale > 1.0
    }

    /// CFG on raw logits, `uncond + s·(cond − uncond)`, for image token `token_index` (token 0
    /// is sampled after the prefill); cond alone without `uncond` or past the cfg_interval.
    pub fn guide(&self, cond: &[f32], uncond: Option<&[f32]>, token_index: usize) -> Vec<f32> {
        let past_interval = self.cfg_interval.is_some_and(|i| token_index > i + 1);
        match uncond {
            Some(u) if !past_interval => {
                let s = self.cfg_scale;
                cond.iter().zip(u).map(|(&c, &u)| u + (c - u) * s).collect()
            }
            _ => cond.to_vec(),
        }
    }

    /// Warped distribution: logits / max(temperature, 1e-5), top-k and top-p in `warp_order`,
    /// softmax. Greedy settings give the one-hot of the argmax.
    pub fn probs(&self, logits: &[f32]) -> Vec<f32> {
        let mut l = logits.to_vec();
        self.warp_in_place(&mut l);
        l
    }

    /// [`Sampling::probs`] in place: logits in, probabilities out.
    pub fn warp_in_place(&self, l: &mut [f32]) {
        if self.is_greedy() {
            let best = argmax(l);
            l.iter_mut().for_each(|v| *v = 0.0);
            l[best] = 1.0;
            return;
        }
        if self.temperature_rule == TemperatureRule::Entropy {
            self.filter(l);
            let t = entropy_temperature(l, self.temperature);
            let inv_t = 1.0 / t.max(1e-5);
            l.iter_mut().for_each(|x| *x *= inv_t);
            lantern_models::cpu::simd::softmax_in_place(l);
            return;
        }
        let inv_t = 1.0 / self.temperature.max(1e-5);
        if inv_t != 1.0 {
            l.iter_mut().for_each(|x| *x *= inv_t);
        }
        self.filter(l);
        lantern_models::cpu::simd::softmax_in_place(l);
    }

    /// Top-k and top-p in `warp_order`, on logits.
    fn filter(&self, l: &mut [f32]) {
        match self.warp_order {
            WarpOrder::TopKThenTopP => {
                top_k_filter(l, self.top_k);
                top_p_filter(l, self.top_p);
            }
            WarpOrder::TopPThenTopK => {
                top_p_filter(l, self.top_p);
                top_k_filter(l, self.top_k);
            }
        }
    }

    /// The next-token distribution at image token `token_index` from raw logit rows: CFG, then
    /// the warpers (one buffer, no intermediate copies). Under greedy settings: the plain softmax
    /// of the guided logits (the acceptance rules need p, and argmax(p) is the greedy token).
    pub fn dist(&self, cond: &[f32], uncond: Option<&[f32]>, token_index: usize) -> Vec<f32> {
        let mut l = self.guide(cond, uncond, token_index);
        if self.is_greedy() {
            lantern_models::cpu::simd::softmax_in_place(&mut l);
        } else {
            self.warp_in_place(&mut l);
        }
        l
    }
}

/// The entropy-aware temperature for filtered logits `l`: `t0 · (2.5·e^(−H/3) + 0.6)`, H the
/// entropy in nats of `softmax(l)` (ARsample's constants).
pub fn entropy_temperature(l: &[f32], t0: f32) -> f32 {
    let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut z, mut s) = (0.0f64, 0.0f64);
    for &x in l {
        if x.is_finite() {
            let d = (x - max) as f64;
            let e = d.exp();
            z += e;
            s += e * d;
        }
    }
    // H = log Z − E[l − max].
    let h = z.ln() - s / z;
    t0 * (2.5 * (-h / 3.0).exp() + 0.6) as f32
}

/// Sets logits below the k-th largest to −inf (ties at the k-th value are kept).
pub fn top_k_filter(logits: &mut [f32], k: usize) {
    if k == 0 || k >= logits.len() {
        return;
    }
    let mut sorted = logits.to_vec();
    let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = *kth;
    for x in logits.iter_mut() {
        if *x < kth {
            *x = f32::NEG_INFINITY;
        }
    }
}

/// Nucleus filter, LlamaGen's rule: sort descending, remove where the cumulative softmax mass
/// exceeds `p`, shifted right by one (the first token is always kept).
pub fn top_p_filter(logits: &mut [f32], p: f32) {
    if p >= 1.0 {
        return;
    }
    let probs = softmax(logits);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let mut cum = 0.0f64;
    let mut remove_next = false;
    for &i in &order {
        if remove_next {
            logits[i] = f32::NEG_INFINITY;
        }
        cum += probs[i] as f64;
        if cum > p as f64 {
            remove_next = true;
        }
    }
}

/// Softmax of a logit row (−inf entries → 0; all −inf → uniform), in f32 with max subtraction.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let mut p = logits.to_vec();
    lantern_models::cpu::simd::softmax_in_place(&mut p);
    p
}

/// Index of the first maximum.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(temperature: f32, top_k: usize, top_p: f32, order: WarpOrder) -> Sampling {
        Sampling {
            temperature,
            top_k,
            top_p,
            cfg_scale: 2.0,
            cfg_interval: None,
            warp_order: order,
            temperature_rule: TemperatureRule::Fixed,
        }
    }

    fn close(a: &[f32], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(&x, &y)| (x as f64 - y).abs() < 1e-6)
    }

    #[test]
    fn guide_and_cfg_interval() {
        let mut s = sampling(1.0, 0, 1.0, WarpOrder::TopKThenTopP);
        assert_eq!(s.guide(&[1.0, 2.0], Some(&[0.0, 1.0]), 0), vec![2.0, 3.0]);
        s.cfg_interval = Some(3);
        assert_eq!(s.guide(&[1.0, 2.0], Some(&[0.0, 1.0]), 4), vec![2.0, 3.0]);
        assert_eq!(s.guide(&[1.0, 2.0], Some(&[0.0, 1.0]), 5), vec![1.0, 2.0]);
        assert_eq!(s.guide(&[1.0, 2.0], None, 0), vec![1.0, 2.0]);
        assert!(s.uses_cfg());
    }

    #[test]
    fn top_k_keeps_ties_and_temperature_scales() {
        let s = sampling(0.5, 2, 1.0, WarpOrder::TopKThenTopP);
        let p = s.probs(&[1.0, 2.0, 2.0, 0.0]);
        assert_eq!(p[0], 0.0);
        assert!((p[1] - 0.5).abs() < 1e-7 && (p[2] - 0.5).abs() < 1e-7);
        let s = sampling(0.5, 2, 1.0, WarpOrder::TopKThenTopP);
        let p = s.probs(&[0.0, 1.0, 0.5]);
        // logits/0.5 = [0, 2, 1], keep {2, 1}: softmax([2, 1])
        let z = (2f64).exp() + (1f64).exp();
        assert!(close(&p, &[0.0, 2f64.exp() / z, 1f64.exp() / z]));
    }

    #[test]
    fn top_p_shift_rule() {
        // probs of [ln 5, ln 3, ln 2] = [0.5, 0.3, 0.2]
        let l = [5f32.ln(), 3f32.ln(), 2f32.ln()];
        // p = 0.5: cum [0.5, 0.8, 1.0] > 0.5 → [F, T, T], shifted → [F, F, T]: keep two.
        let p = sampling(1.0, 0, 0.5, WarpOrder::TopKThenTopP).probs(&l);
        assert!(close(&p, &[0.625, 0.375, 0.0]));
        // p = 0.4: cum > 0.4 at the first → keep only the first.
        let p = sampling(1.0, 0, 0.4, WarpOrder::TopKThenTopP).probs(&l);
        assert!(close(&p, &[1.0, 0.0, 0.0]));
    }

    #[test]
    fn warp_orders_differ() {
        // probs [0.4, 0.3, 0.2, 0.1], top-k 3, top-p 0.75.
        let l: Vec<f32> = [0.4f32, 0.3, 0.2, 0.1].iter().map(|x| x.ln()).collect();
        // top-k first renormalises to [4/9, 3/9, 2/9]: cum .444, .778 > .75 → keep two.
        let a = sampling(1.0, 3, 0.75, WarpOrder::TopKThenTopP).probs(&l);
        assert!(close(&a, &[4.0 / 7.0, 3.0 / 7.0, 0.0, 0.0]));
        // top-p first: cum .4, .7, .9 > .75 → keep three; top-k 3 keeps them.
        let b = sampling(1.0, 3, 0.75, WarpOrder::TopPThenTopK).probs(&l);
        assert!(close(&b, &[4.0 / 9.0, 3.0 / 9.0, 2.0 / 9.0, 0.0]));
    }

    #[test]
    fn greedy_is_one_hot_at_first_max() {
        let s = sampling(0.0, 0, 1.0, WarpOrder::TopKThenTopP);
        assert!(s.is_greedy());
        assert_eq!(s.probs(&[0.1, 3.0, 3.0]), vec![0.0, 1.0, 0.0]);
        assert_eq!(argmax(&[1.0, 5.0, 5.0]), 1);
        assert_eq!(softmax(&[f32::NEG_INFINITY, 0.0]), vec![0.0, 1.0]);
    }
}

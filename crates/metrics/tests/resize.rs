//! The Pillow bicubic resize (clean-fid's resize before Inception) reproduces Pillow on a float
//! plane, shrinking and enlarging each axis. Reference: `tests/data/make_references.py`.

mod common;

use common::{floats, reference, uniform};
use lantern_metrics::resize::pil_bicubic;

#[test]
fn matches_pillow_both_ways() {
    let r = reference("resize_reference.json");
    let (h, w) = (
        r["h"].as_u64().unwrap() as usize,
        r["w"].as_u64().unwrap() as usize,
    );
    let plane: Vec<f32> = uniform("resize", h * w).iter().map(|u| u * 255.0).collect();
    for out in r["outputs"].as_array().unwrap() {
        let (oh, ow) = (
            out["h"].as_u64().unwrap() as usize,
            out["w"].as_u64().unwrap() as usize,
        );
        let got = pil_bicubic(&plane, h, w, oh, ow);
        let want = floats(&out["values"]);
        let err = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err < 1e-4,
            "{h}×{w} → {oh}×{ow}: max difference {err} (of 255)"
        );
    }
}

//! Pillow's resampling reproduces Pillow: the float bicubic (clean-fid's resize before
//! Inception) and bilinear planes, and the 8-bit bilinear and bicubic path (torchvision's
//! `Resize` on a PIL image), shrinking and enlarging each axis. References:
//! `tests/data/make_references.py`.

use crate::common::{floats, reference, uniform};
use lantern_metrics::resize::{pil_bicubic, pil_resize_f32, pil_resize_u8, Filter};
use serde_json::Value;

fn size(v: &Value) -> (usize, usize) {
    (
        v["h"].as_u64().unwrap() as usize,
        v["w"].as_u64().unwrap() as usize,
    )
}

fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
}

#[test]
fn float_planes_match_pillow_both_ways() {
    let r = reference("resize_reference.json");
    let (h, w) = size(&r);
    let plane: Vec<f32> = uniform("resize", h * w).iter().map(|u| u * 255.0).collect();
    for out in r["outputs"].as_array().unwrap() {
        let (oh, ow) = size(out);
        let err = max_diff(&pil_bicubic(&plane, h, w, oh, ow), &floats(&out["values"]));
        assert!(err < 1e-4, "bicubic {h}×{w} → {oh}×{ow}: {err} (of 255)");
    }
    for out in reference("resize_u8_reference.json")["float_bilinear"]
        .as_array()
        .unwrap()
    {
        let (oh, ow) = size(out);
        let got = pil_resize_f32(&plane, (h, w), (oh, ow), Filter::Bilinear);
        let err = max_diff(&got, &floats(&out["values"]));
        assert!(err < 1e-4, "bilinear {h}×{w} → {oh}×{ow}: {err} (of 255)");
    }
}

#[test]
fn eight_bit_planes_match_pillow_exactly() {
    let r = reference("resize_u8_reference.json");
    let (h, w) = size(&r);
    let plane: Vec<u8> = uniform("resize-u8", h * w)
        .iter()
        .map(|u| (u * 256.0) as u8)
        .collect();
    for out in r["outputs"].as_array().unwrap() {
        let (oh, ow) = size(out);
        let filter = match out["filter"].as_str().unwrap() {
            "bilinear" => Filter::Bilinear,
            "bicubic" => Filter::Bicubic,
            other => panic!("filter {other}"),
        };
        let want: Vec<u8> = floats(&out["values"]).iter().map(|&v| v as u8).collect();
        let got = pil_resize_u8(&plane, (h, w), (oh, ow), filter);
        let wrong = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            wrong, 0,
            "{filter:?} {h}×{w} → {oh}×{ow}: {wrong} bytes differ"
        );
    }
    // The same size is the identity, as in Pillow (no pass runs).
    assert_eq!(
        pil_resize_u8(&plane, (h, w), (h, w), Filter::Bilinear),
        plane
    );
}

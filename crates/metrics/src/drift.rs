//! Cheap proxies of how far a strategy's image moved from AR's image at the same seed.

/// Share of positions where two token sequences agree.
pub fn token_agreement(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / n as f64
}

/// Mean squared error between two 8-bit images of the same size (in 0–255 units).
pub fn pixel_mse(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images of different sizes");
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// PSNR in dB for a mean squared error in 0–255 units (infinite when the images are identical).
pub fn psnr(mse: f64) -> f64 {
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_and_psnr_of_known_pairs() {
        assert_eq!(token_agreement(&[1, 2, 3, 4], &[1, 0, 3, 0]), 0.5);
        assert_eq!(pixel_mse(&[0, 10, 20], &[0, 10, 20]), 0.0);
        assert!(psnr(0.0).is_infinite());
        assert_eq!(pixel_mse(&[0, 0], &[255, 255]), 65025.0);
        assert!(psnr(65025.0).abs() < 1e-12);
        assert!((psnr(65025.0 / 100.0) - 20.0).abs() < 1e-9);
    }
}

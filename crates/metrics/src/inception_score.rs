//! Inception Score: exp(E_x KL(p(y|x) ‖ p(y))), averaged over splits as in Salimans et al. (2016).

use crate::MetricError;

/// Mean and standard deviation over `splits` of the Inception Score of `probs` (`n × classes`
/// row-major class probabilities, each row summing to 1).
pub fn inception_score(
    probs: &[f32],
    classes: usize,
    splits: usize,
) -> Result<(f64, f64), MetricError> {
    if classes == 0 || !probs.len().is_multiple_of(classes) {
        return Err(MetricError::Shape(format!(
            "{} probabilities do not make rows of {classes}",
            probs.len()
        )));
    }
    if probs.iter().any(|p| !p.is_finite()) {
        return Err(MetricError::NonFinite("class probabilities".into()));
    }
    let n = probs.len() / classes;
    if splits == 0 || n < splits {
        return Err(MetricError::TooFew(format!(
            "{n} images for {splits} splits"
        )));
    }
    let scores: Vec<f64> = (0..splits)
        .map(|s| {
            let rows: Vec<&[f32]> = (s * n / splits..(s + 1) * n / splits)
                .map(|i| &probs[i * classes..(i + 1) * classes])
                .collect();
            let mut marginal = vec![0f64; classes];
            for r in &rows {
                for (m, &p) in marginal.iter_mut().zip(r.iter()) {
                    *m += p as f64 / rows.len() as f64;
                }
            }
            let kl: f64 = rows
                .iter()
                .map(|r| {
                    r.iter()
                        .zip(&marginal)
                        .filter(|(&p, _)| p > 0.0)
                        .map(|(&p, &m)| p as f64 * ((p as f64).ln() - m.ln()))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / rows.len() as f64;
            kl.exp()
        })
        .collect();
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / splits as f64;
    Ok((mean, var.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(n: usize, classes: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|i| (0..classes).map(move |c| f32::from(u8::from(i % classes == c))))
            .collect()
    }

    #[test]
    fn confident_and_evenly_spread_predictions_score_the_class_count() {
        let (mean, std) = inception_score(&one_hot(40, 10), 10, 2).unwrap();
        assert!((mean - 10.0).abs() < 1e-9 && std < 1e-9, "{mean} {std}");
    }

    #[test]
    fn identical_predictions_score_one() {
        let row = [0.1f32, 0.2, 0.3, 0.4];
        let probs: Vec<f32> = (0..8).flat_map(|_| row).collect();
        let (mean, _) = inception_score(&probs, 4, 1).unwrap();
        assert!((mean - 1.0).abs() < 1e-6, "{mean}");
    }

    #[test]
    fn two_of_four_classes_score_two() {
        // Confident predictions covering only half the classes: IS = 2.
        let probs: Vec<f32> = (0..6)
            .flat_map(|i| (0..4).map(move |c| f32::from(u8::from(c == i % 2))))
            .collect();
        assert!((inception_score(&probs, 4, 1).unwrap().0 - 2.0).abs() < 1e-9);
    }

    #[test]
    fn refuses_nan_and_ragged_rows() {
        assert!(matches!(
            inception_score(&[f32::NAN, 1.0], 2, 1),
            Err(MetricError::NonFinite(_))
        ));
        assert!(matches!(
            inception_score(&[0.5, 0.5, 1.0], 2, 1),
            Err(MetricError::Shape(_))
        ));
    }
}

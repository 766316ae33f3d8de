//! Running the pilots of the tree cost model: warmed-up pilot images of one acceptance rule on
//! the static pilot tree and on the full dynamic tree, through the same models and strategy code
//! as the timed images.

use super::model::{static_pilot_tree, Pilot};
use crate::embeddings::Tables;
use crate::engine::{models_for, ModelSet};
use crate::model::ImageCondition;
use crate::neighbours::NeighbourTable;
use crate::sampling::Sampling;
use crate::strategy::{generate, image_rng, DecodeError, Speculative, Strategy, TreeShape};

/// Pilots `spec`'s acceptance rule (its relaxation and residuals; its own tree is ignored): for
/// each pilot tree one untimed warm-up image, then `images` pilot images over `conds` (seeds
/// apart from every timed image's).
pub fn run_pilot(
    set: &dyn ModelSet,
    spec: &Speculative,
    sampling: &Sampling,
    neighbours: Option<&NeighbourTable>,
    conds: &[ImageCondition],
    images: usize,
) -> Result<Pilot, DecodeError> {
    let full = TreeShape::lantern_dynamic();
    let mut pilot = Pilot {
        dynamic: Some(full.clone()),
        ..Pilot::default()
    };
    let mut rounds = Vec::new();
    let tables = Tables::neighbours(neighbours);
    for shape in [static_pilot_tree(), full] {
        let strategy = Strategy::Speculative(Speculative {
            tree: shape.clone(),
            ..spec.clone()
        });
        let mut models = models_for(set, &strategy);
        let cond = |i: usize| &conds[i % conds.len()];
        generate(
            models.as_mut(),
            &strategy,
            sampling,
            &tables,
            cond(0),
            &image_rng(u64::MAX - 3, 0),
        )?;
        for i in 0..images {
            let g = generate(
                models.as_mut(),
                &strategy,
                sampling,
                &tables,
                cond(i),
                &image_rng(u64::MAX - 4, i as u64),
            )?;
            pilot.record(&shape, &g.steps);
            rounds.extend(g.steps.into_iter().map(|s| (shape.clone(), s)));
        }
    }
    pilot.set_host_rate(&rounds);
    Ok(pilot)
}

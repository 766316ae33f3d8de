//! A loaded model set as runners use it, whatever the target family: it makes [`Models`] for a
//! strategy and says what it runs on, how big its images are and where LANTERN's neighbours and
//! GSD's embeddings come from. LlamaGen's [`ModelBundle`] and the Chameleon family's
//! [`ChameleonSet`] implement it.

use lantern_models::backend::EngineKind;
use lantern_models::chameleon::layout::Convention;
use lantern_models::chameleon::ChameleonSet;
use lantern_models::cpu::WeightDtype;
use lantern_models::{ModelBundle, ModelError, VqModel};

use super::{ChameleonModels, HostModels};
use crate::model::Models;

/// A loaded target (with its tokenizer and optional drafter) that makes [`Models`].
pub trait ModelSet {
    /// Models with room for trees of `max_tree` nodes and `max_drafted` drafter elements per
    /// round, the drafter attached when `drafts` and loaded.
    fn models(&self, drafts: bool, max_tree: usize, max_drafted: usize) -> Box<dyn Models + '_>;
    /// The engine the models run on.
    fn engine(&self) -> EngineKind;
    /// Weight storage of the target's (and drafter's) matrices.
    fn dtype(&self) -> WeightDtype;
    /// Whether a drafter is loaded.
    fn has_drafter(&self) -> bool;
    /// Whether the drafter is a stand-in (random or derived from the target), not a trained one.
    fn drafter_is_stand_in(&self) -> bool;
    /// The target family records name: `llamagen`, `lumina-mgpt` or `anole`.
    fn family(&self) -> &'static str;
    /// Positions the step-cost measurement may fill (it verifies trees up to half of them).
    fn cost_context(&self) -> usize;
    /// The tokenizer that decodes images, when loaded.
    fn vq(&self) -> Option<&VqModel>;
    /// The image's latent grid, `[rows, columns]`.
    fn image_grid(&self) -> [usize; 2];
    /// LANTERN's latent space: row-major values, `(codes, dim)` and the source's name (recorded
    /// with every result).
    fn neighbour_space(&self) -> Result<(Vec<f32>, usize, usize, &'static str), ModelError>;
    /// GSD's distance space, one row per code the strategies see: row-major, `(codes, dim)`.
    fn token_embeddings(&self) -> Result<(Vec<f32>, usize, usize), ModelError>;
}

impl ModelSet for ModelBundle {
    fn models(&self, drafts: bool, max_tree: usize, max_drafted: usize) -> Box<dyn Models + '_> {
        match &self.host {
            Some(h) => Box::new(HostModels::new(
                &h.gpt,
                h.drafter.as_ref().filter(|_| drafts),
                max_tree,
                max_drafted,
            )),
            None => Box::new(super::BurnModels::new(
                &self.gpt,
                self.drafter.as_ref().filter(|_| drafts),
                max_tree,
                max_drafted,
            )),
        }
    }

    fn engine(&self) -> EngineKind {
        if self.host.is_some() {
            EngineKind::Host
        } else {
            EngineKind::Burn
        }
    }

    fn dtype(&self) -> WeightDtype {
        self.dtype
    }

    fn has_drafter(&self) -> bool {
        self.drafter.is_some()
    }

    fn drafter_is_stand_in(&self) -> bool {
        self.drafter_is_random
    }

    fn family(&self) -> &'static str {
        "llamagen"
    }

    fn cost_context(&self) -> usize {
        self.gpt.config().block_size
    }

    fn vq(&self) -> Option<&VqModel> {
        self.vq.as_ref()
    }

    fn image_grid(&self) -> [usize; 2] {
        let g = self.gpt.config().grid_size();
        [g, g]
    }

    fn neighbour_space(&self) -> Result<(Vec<f32>, usize, usize, &'static str), ModelError> {
        ModelBundle::neighbour_space(self)
    }

    fn token_embeddings(&self) -> Result<(Vec<f32>, usize, usize), ModelError> {
        ModelBundle::token_embeddings(self)
    }
}

impl ModelSet for ChameleonSet {
    fn models(&self, drafts: bool, max_tree: usize, max_drafted: usize) -> Box<dyn Models + '_> {
        let models = ChameleonModels::new(&self.target, self.layout.clone(), max_tree);
        match self.drafter.as_ref().filter(|_| drafts) {
            Some(d) => Box::new(models.with_drafter(d, max_drafted)),
            None => Box::new(models),
        }
    }

    fn engine(&self) -> EngineKind {
        EngineKind::Host
    }

    fn dtype(&self) -> WeightDtype {
        self.dtype
    }

    fn has_drafter(&self) -> bool {
        self.drafter.is_some()
    }

    fn drafter_is_stand_in(&self) -> bool {
        self.drafter_is_derived
    }

    fn family(&self) -> &'static str {
        match self.layout.convention {
            Convention::Lumina => "lumina-mgpt",
            Convention::Anole => "anole",
        }
    }

    fn cost_context(&self) -> usize {
        self.layout.tokens()
    }

    fn vq(&self) -> Option<&VqModel> {
        self.vq.as_ref()
    }

    fn image_grid(&self) -> [usize; 2] {
        [self.layout.h, self.layout.w]
    }

    /// The VQGAN's raw codebook (LANTERN's `vq_distances` for Anole and Lumina-mGPT), else the
    /// target's image-token embeddings.
    fn neighbour_space(&self) -> Result<(Vec<f32>, usize, usize, &'static str), ModelError> {
        match &self.vq {
            Some(vq) => {
                let table = vq.codebook();
                let [codes, dim] = table.dims();
                let rows = table.into_data().try_into_vec_as::<f32>().map_err(|e| {
                    ModelError::Input(format!("cannot read the VQGAN codebook: {e:?}"))
                })?;
                Ok((rows, codes, dim, "vqgan_codebook"))
            }
            None => {
                let (rows, codes, dim) = self.target.image_embeddings();
                Ok((rows, codes, dim, "image_tok_embeddings"))
            }
        }
    }

    fn token_embeddings(&self) -> Result<(Vec<f32>, usize, usize), ModelError> {
        Ok(self.target.image_embeddings())
    }
}

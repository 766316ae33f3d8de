//! What a round costs: step costs measured through the [`crate::model::Models`] protocol
//! ([`measure`]), and the tree cost model behind `tree = "auto"` ([`model`]).

pub mod measure;

pub use measure::{binary_tree, measure_step_costs, StepCosts};

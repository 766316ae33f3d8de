//! What a round costs: step costs measured through the [`crate::model::Models`] protocol
//! ([`measure`]), the tree cost model behind `tree = "auto"` ([`model`]), its pilots
//! ([`auto`]) and the in-run check of its choice ([`check`]).

pub mod auto;
pub mod check;
pub mod measure;
pub mod model;

pub use auto::run_pilot;
pub use check::RoundCheck;
pub use measure::{binary_tree, measure_step_costs, StepCosts};
pub use model::{candidates, choose, predict, static_pilot_tree, Pilot, Prediction};

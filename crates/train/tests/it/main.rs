//! Integration tests of `lantern-train`, one binary (one release link against burn): the VQ,
//! target and drafter recipes on small data.

mod train;

//! Errors of metric computations.

/// What went wrong computing a metric.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    /// Feature sets of different widths, or a matrix whose length is not a multiple of its width.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Too few samples for the statistic (e.g. a covariance needs two, k-NN needs k + 1).
    #[error("too few samples: {0}")]
    TooFew(String),
    /// A NaN or infinity in the inputs.
    #[error("non-finite value in {0}")]
    NonFinite(String),
    /// Reading or writing a cache file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A network's weights that do not load (the message names the file).
    #[error("{0}")]
    Model(String),
    /// A cache file that does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        message: String,
    },
}

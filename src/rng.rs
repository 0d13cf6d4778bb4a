//! Seeded random streams. Every random choice of a run (split, initialisation, batch order, binary
//! samples, probes, image colourings) comes from a ChaCha8 generator seeded with the run's seed on a
//! stream of its own, so that changing one consumer never shifts the draws of another, and the same seed
//! and thread count give the same result.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The consumers of randomness, each on its own ChaCha8 stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The stratified train/validation/test split (and the shipped digits' split).
    Split,
    /// Weight initialisation.
    Init,
    /// Batch order.
    Batches,
    /// Binary samples during training.
    Noise,
    /// Binary samples of the validation loss.
    Validation,
    /// Binary samples and probes at evaluation.
    Eval,
    /// Initialisation of an adversary.
    Adversary,
    /// The Monte-Carlo cross-check of the joint MI in `fairbits mi` (shares the adversary's stream
    /// number: the two never meet in one run).
    MonteCarloCheck,
    /// Biased colours of the training images.
    ColourTrain,
    /// Uniform colours of the training images for the probes' training set.
    ColourProbe,
    /// Uniform colours of the unbiased test images.
    ColourUnbiased,
    /// Biased colours of the biased test images.
    ColourBiased,
    /// Class-stratified subsampling of the training images.
    Subsample,
    /// Subsampling of the rows the probes train and score on (large splits).
    ProbeRows,
}

impl Stream {
    /// The ChaCha8 stream number (fixed: saved runs depend on it).
    pub fn id(self) -> u64 {
        match self {
            Stream::Split => 1,
            Stream::Init => 2,
            Stream::Batches => 3,
            Stream::Noise => 4,
            Stream::Validation => 5,
            Stream::Eval => 6,
            Stream::Adversary | Stream::MonteCarloCheck => 7,
            Stream::ColourTrain => 8,
            Stream::ColourProbe => 9,
            Stream::ColourUnbiased => 10,
            Stream::ColourBiased => 11,
            Stream::Subsample => 12,
            Stream::ProbeRows => 13,
        }
    }
}

/// A generator seeded with `seed` on `stream`.
pub fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream.id());
    r
}

/// A seed derived from `seed` and `k` (SplitMix64's finaliser over their combination): the streams of a
/// restarted training run, unrelated to the first start's and to any other seed's first start.
pub fn derive(seed: u64, k: u64) -> u64 {
    let mut z = seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

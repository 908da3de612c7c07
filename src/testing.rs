//! What the unit tests share: a replayable source of random numbers for the tests that
//! compare our encoders with lettre's on random input. Test builds only.

/// A fixed linear congruential sequence (Knuth's MMIX constants): the same seed gives the
/// same numbers, so that a failure can be replayed.
pub struct Replayable(u64);

impl Replayable {
    pub fn new(seed: u64) -> Self {
        Replayable(seed)
    }

    /// The next number, below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize % n
    }
}

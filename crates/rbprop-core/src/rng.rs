//! Named, seeded random streams. Every random draw of a run comes from one of these, so a run is a
//! pure function of its config: forward weights, feedback matrices, the data order and channel
//! noise each have their own stream, and changing one (say, the channel) leaves the others alone.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator behind every stream.
pub type Rng = ChaCha8Rng;

/// The stream `name` of run seed `seed`.
pub fn stream(seed: u64, name: &str) -> Rng {
    // FNV-1a of the name, mixed with the seed by SplitMix64: distinct names give unrelated keys.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    Rng::seed_from_u64(z)
}

/// `n` draws from N(0, sd²), computed in f64 and rounded to f32.
pub fn normal_vec(n: usize, sd: f64, rng: &mut Rng) -> Vec<f32> {
    use rand_distr::{Distribution, StandardNormal};
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            (sd * z) as f32
        })
        .collect()
}

//! The `random` and `shuffle` filters. With a `seed` they are deterministic, which
//! playbooks use to spread cron jobs (`{{ 59 | random(seed=inventory_hostname) }}`).

// NOTE: Ansible seeds Python's Mersenne Twister, so for the same seed these filters
// pick different values than Ansible does; a migrated cron entry changes once.

use std::hash::{BuildHasher, Hasher};

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, Value};
use sha2::{Digest, Sha256};

use super::{from_data, invalid, positional_or_keyword, to_data};

/// A splitmix64 generator: small, and good enough to pick an item or a number.
struct Generator(u64);

impl Generator {
    /// Seeds from `seed`, or randomly without one.
    fn new(seed: Option<&Value>) -> Generator {
        match seed {
            Some(seed) => {
                let digest = Sha256::digest(seed.to_string().as_bytes());
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&digest[..8]);
                Generator(u64::from_le_bytes(bytes))
            }
            None => Generator(
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            ),
        }
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..bound`; `bound` must not be 0.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Returns a random number from `range(start, end, step)` for a number, or a random
/// item for a list.
pub(super) fn random(
    value: &Value,
    start: Option<i64>,
    step: Option<i64>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let start = positional_or_keyword(start, &kwargs, "start")?.unwrap_or(0);
    let step = positional_or_keyword(step, &kwargs, "step")?.unwrap_or(1);
    let seed = kwargs.get::<Option<Value>>("seed")?;
    kwargs.assert_all_used()?;
    let mut generator = Generator::new(seed.as_ref());

    if value.kind() == ValueKind::Number {
        let end = value
            .as_i64()
            .ok_or_else(|| invalid(format!("`random` takes an integer end, got `{value}`")))?;
        if step <= 0 {
            return Err(invalid(format!(
                "invalid `random` step `{step}`: use a positive step"
            )));
        }
        let count = (end - start + step - 1).div_euclid(step);
        if count <= 0 {
            return Err(invalid(format!(
                "`random` got an empty range from {start} to {end}"
            )));
        }
        let pick = generator.below(count as u64) as i64;
        return Ok(Value::from(start + pick * step));
    }

    let serde_json::Value::Array(items) = to_data(value)? else {
        return Err(invalid(format!(
            "`random` takes a number or a list, got {}",
            value.kind()
        )));
    };
    if items.is_empty() {
        return Err(invalid("`random` cannot pick from an empty list"));
    }
    let pick = generator.below(items.len() as u64) as usize;
    Ok(from_data(&items[pick]))
}

/// Returns the list in random order (Fisher-Yates).
pub(super) fn shuffle(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let seed = kwargs.get::<Option<Value>>("seed")?;
    kwargs.assert_all_used()?;
    let serde_json::Value::Array(mut items) = to_data(value)? else {
        return Err(invalid(format!(
            "`shuffle` takes a list, got {}",
            value.kind()
        )));
    };
    let mut generator = Generator::new(seed.as_ref());
    for i in (1..items.len()).rev() {
        let j = generator.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
    Ok(from_data(&serde_json::Value::Array(items)))
}

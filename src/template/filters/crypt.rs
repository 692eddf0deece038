//! The `password_hash` filter: SHA-512 crypt (`$6$`), the format of `/etc/shadow`
//! that Ansible's `user` module takes, following Ulrich Drepper's "Unix crypt using
//! SHA-256 and SHA-512" specification.

use std::hash::{BuildHasher, Hasher};

use minijinja::value::Kwargs;
use minijinja::Error;
use sha2::{Digest, Sha512};

use super::{invalid, positional_or_keyword};

const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DEFAULT_ROUNDS: u32 = 5000;
const MAX_SALT_LEN: usize = 16;

/// Hashes a password for `/etc/shadow`. Without `salt` a random salt is drawn, so
/// the hash differs on every run, as in Ansible.
pub(super) fn password_hash(
    password: String,
    hashtype: Option<String>,
    salt: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let hashtype =
        positional_or_keyword(hashtype, &kwargs, "hashtype")?.unwrap_or_else(|| "sha512".into());
    let salt = positional_or_keyword(salt, &kwargs, "salt")?;
    let rounds = kwargs.get::<Option<u32>>("rounds")?;
    kwargs.assert_all_used()?;

    if hashtype != "sha512" {
        return Err(invalid(format!(
            "unsupported `password_hash` type `{hashtype}`: only sha512 is supported"
        )));
    }
    let salt = match salt {
        Some(salt) => {
            if salt.contains(['$', ':', '\n']) {
                return Err(invalid(format!(
                    "invalid `password_hash` salt `{salt}`: it must not contain `$`, `:` or a newline"
                )));
            }
            salt
        }
        None => random_salt(),
    };
    Ok(sha512_crypt(password.as_bytes(), &salt, rounds))
}

/// Returns 16 salt characters. The salt must differ between hashes but need not be
/// secret, so the randomly seeded standard hasher is an adequate source.
fn random_salt() -> String {
    let mut salt = String::with_capacity(MAX_SALT_LEN);
    while salt.len() < MAX_SALT_LEN {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(salt.len());
        let mut bits = hasher.finish();
        for _ in 0..8 {
            if salt.len() == MAX_SALT_LEN {
                break;
            }
            salt.push(char::from(ALPHABET[(bits & 0x3f) as usize]));
            bits >>= 6;
        }
    }
    salt
}

/// Computes `$6$[rounds=N$]salt$hash`. The salt is cut to 16 bytes and the rounds
/// clamped to 1000..=999999999, as the specification requires.
pub(super) fn sha512_crypt(password: &[u8], salt: &str, rounds: Option<u32>) -> String {
    let salt = &salt.as_bytes()[..salt.len().min(MAX_SALT_LEN)];
    let round_count = rounds.unwrap_or(DEFAULT_ROUNDS).clamp(1000, 999_999_999);

    let alternate = Sha512::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();

    let mut hasher = Sha512::new().chain_update(password).chain_update(salt);
    hasher.update(repeat_to_len(&alternate, password.len()));
    let mut length = password.len();
    while length > 0 {
        if length & 1 == 1 {
            hasher.update(alternate);
        } else {
            hasher.update(password);
        }
        length >>= 1;
    }
    let mut digest = hasher.finalize();

    let mut password_hasher = Sha512::new();
    for _ in 0..password.len() {
        password_hasher.update(password);
    }
    let password_bytes = repeat_to_len(&password_hasher.finalize(), password.len());

    let mut salt_hasher = Sha512::new();
    for _ in 0..16 + usize::from(digest[0]) {
        salt_hasher.update(salt);
    }
    let salt_bytes = repeat_to_len(&salt_hasher.finalize(), salt.len());

    for round in 0..round_count {
        let mut hasher = Sha512::new();
        if round % 2 == 1 {
            hasher.update(&password_bytes);
        } else {
            hasher.update(digest);
        }
        if round % 3 != 0 {
            hasher.update(&salt_bytes);
        }
        if round % 7 != 0 {
            hasher.update(&password_bytes);
        }
        if round % 2 == 1 {
            hasher.update(digest);
        } else {
            hasher.update(&password_bytes);
        }
        digest = hasher.finalize();
    }

    let mut hash = String::from("$6$");
    if rounds.is_some() {
        hash.push_str(&format!("rounds={round_count}$"));
    }
    hash.push_str(&String::from_utf8_lossy(salt));
    hash.push('$');
    hash.push_str(&encode(&digest));
    hash
}

/// Repeats `bytes` to fill `len` bytes.
fn repeat_to_len(bytes: &[u8], len: usize) -> Vec<u8> {
    bytes.iter().copied().cycle().take(len).collect()
}

/// Encodes the digest with crypt's base64 alphabet in the byte order that the
/// specification fixes for SHA-512.
fn encode(digest: &[u8]) -> String {
    const ORDER: [(usize, usize, usize); 21] = [
        (0, 21, 42),
        (22, 43, 1),
        (44, 2, 23),
        (3, 24, 45),
        (25, 46, 4),
        (47, 5, 26),
        (6, 27, 48),
        (28, 49, 7),
        (50, 8, 29),
        (9, 30, 51),
        (31, 52, 10),
        (53, 11, 32),
        (12, 33, 54),
        (34, 55, 13),
        (56, 14, 35),
        (15, 36, 57),
        (37, 58, 16),
        (59, 17, 38),
        (18, 39, 60),
        (40, 61, 19),
        (62, 20, 41),
    ];
    let mut text = String::with_capacity(86);
    for (high, middle, low) in ORDER {
        let word = (u32::from(digest[high]) << 16)
            | (u32::from(digest[middle]) << 8)
            | u32::from(digest[low]);
        push_chars(&mut text, word, 4);
    }
    push_chars(&mut text, u32::from(digest[63]), 2);
    text
}

fn push_chars(text: &mut String, mut word: u32, count: usize) {
    for _ in 0..count {
        text.push(char::from(ALPHABET[(word & 0x3f) as usize]));
        word >>= 6;
    }
}

//! Password hashing: argon2id in the PHC string format.
//!
//! A stored hash reads `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`: the
//! parameters travel with the hash, so they can be raised later and old
//! hashes still verify; [`check_password`] reports `needs_rehash` for them
//! and [`authenticate`](crate::auth::authenticate) stores a new hash on the
//! next successful login.
//!
//! The defaults are the `argon2` crate's `Params::DEFAULT`, which are
//! OWASP's first recommendation for argon2id (Password Storage Cheat Sheet):
//! 19 MiB of memory (`password_hash_memory_kib = 19456`), 2 iterations, 1
//! degree of parallelism. Raise them in `kiln.toml` when logins can afford
//! more time per attempt.
//!
//! Hashing takes tens of milliseconds of CPU on purpose, so the async
//! functions run it on Tokio's blocking pool: one login must never stall the
//! other requests of its worker thread.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use kiln::auth::hashers::{check_password, make_password};
//!
//! let hash = make_password("correct horse battery staple").await?;
//! assert!(hash.starts_with("$argon2id$"));
//! assert!(check_password("correct horse battery staple", &hash).await.valid);
//! assert!(!check_password("Tr0ub4dor&3", &hash).await.valid);
//! # Ok::<(), kiln::auth::hashers::HashError>(())
//! # }).unwrap();
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::settings::Settings;

/// The prefix of an unusable password (Django's `set_unusable_password`).
pub const UNUSABLE_PASSWORD_PREFIX: &str = "!";

/// Argon2 computations (hashes and verifications) since the process started:
/// a figure for metrics, and what tests read to see that a login ran the
/// hasher whether or not the user exists.
static HASHER_RUNS: AtomicU64 = AtomicU64::new(0);

/// The hasher built from the settings at boot; the defaults until then.
static CURRENT: RwLock<Option<Hasher>> = RwLock::new(None);

/// A hash of a random password with the current parameters, verified when
/// there is no real hash to check (unknown user, unusable password) so that
/// the answer takes as long as a real check.
static DUMMY: Mutex<Option<(Params, String)>> = Mutex::new(None);

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The settings' argon2 parameters are out of range.
    #[error(
        "argon2 parameters m={memory_kib} KiB, t={iterations}, p={parallelism} are invalid: {reason}\n  fix: set password_hash_memory_kib to at least 8 x password_hash_parallelism, password_hash_iterations to 1 or more and password_hash_parallelism between 1 and 255"
    )]
    Params {
        /// `password_hash_memory_kib`.
        memory_kib: u32,
        /// `password_hash_iterations`.
        iterations: u32,
        /// `password_hash_parallelism`.
        parallelism: u32,
        /// What argon2 said.
        reason: String,
    },
    /// The hasher failed (the system's random source, or a panic in the
    /// blocking task).
    #[error("hashing the password failed: {0}")]
    Failed(String),
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password matches.
    pub valid: bool,
    /// The hash was made with other parameters (or another algorithm) than
    /// the current ones: store a new one now that the password is known.
    pub needs_rehash: bool,
}

/// An argon2id hasher with fixed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hasher {
    params: Params,
}

impl Default for Hasher {
    /// The `argon2` crate's defaults (OWASP's recommendation).
    fn default() -> Self {
        Self {
            params: Params::DEFAULT,
        }
    }
}

impl Hasher {
    /// A hasher using `memory_kib` KiB, `iterations` passes and
    /// `parallelism` lanes.
    ///
    /// # Errors
    ///
    /// [`HashError::Params`] when argon2 refuses the parameters.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, HashError> {
        Params::new(memory_kib, iterations, parallelism, None)
            .map(|params| Self { params })
            .map_err(|error| HashError::Params {
                memory_kib,
                iterations,
                parallelism,
                reason: error.to_string(),
            })
    }

    /// The hasher the settings describe (`password_hash_*`).
    ///
    /// # Errors
    ///
    /// As [`Hasher::new`].
    pub fn from_settings(settings: &Settings) -> Result<Self, HashError> {
        Self::new(
            settings.password_hash_memory_kib,
            settings.password_hash_iterations,
            settings.password_hash_parallelism,
        )
    }

    /// The hasher set by [`configure`] (at boot), or the defaults.
    #[must_use]
    pub fn current() -> Self {
        CURRENT
            .read()
            .ok()
            .and_then(|current| current.clone())
            .unwrap_or_default()
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` with a fresh random salt, on the calling thread:
    /// call it from blocking code only (the async [`Hasher::make_password`]
    /// does).
    ///
    /// # Errors
    ///
    /// [`HashError::Failed`] when the system has no random source.
    pub fn hash_blocking(&self, password: &str) -> Result<String, HashError> {
        let mut salt = [0_u8; 16];
        getrandom::fill(&mut salt).map_err(|error| HashError::Failed(error.to_string()))?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|error| HashError::Failed(error.to_string()))?;
        HASHER_RUNS.fetch_add(1, Ordering::Relaxed);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| HashError::Failed(error.to_string()))
    }

    /// Checks `password` against `encoded`, on the calling thread. A hash
    /// that is unusable or not a PHC string never matches, but still costs
    /// one argon2 run, like a real check.
    #[must_use]
    pub fn verify_blocking(&self, password: &str, encoded: &str) -> Verification {
        let parsed = (!encoded.starts_with(UNUSABLE_PASSWORD_PREFIX))
            .then(|| PasswordHash::new(encoded).ok())
            .flatten();
        let Some(hash) = parsed else {
            self.run_dummy(password);
            return Verification {
                valid: false,
                needs_rehash: false,
            };
        };
        HASHER_RUNS.fetch_add(1, Ordering::Relaxed);
        // The verifier uses the parameters stored in the hash, not ours.
        let valid = self
            .argon2()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        Verification {
            valid,
            needs_rehash: valid && !self.matches(&hash),
        }
    }

    /// Whether `hash` was made by this hasher's algorithm and parameters.
    fn matches(&self, hash: &PasswordHash<'_>) -> bool {
        let same_params = Params::try_from(hash).is_ok_and(|params| {
            params.m_cost() == self.params.m_cost()
                && params.t_cost() == self.params.t_cost()
                && params.p_cost() == self.params.p_cost()
        });
        hash.algorithm == Algorithm::Argon2id.ident()
            && hash.version == Some(Version::V0x13.into())
            && same_params
    }

    /// One verification against a hash of a random password, so that a
    /// check without a real hash costs what a real check costs.
    fn run_dummy(&self, password: &str) {
        let cached = DUMMY
            .lock()
            .ok()
            .and_then(|dummy| dummy.clone())
            .filter(|(params, _)| *params == self.params);
        let dummy = match cached {
            Some((_, hash)) => hash,
            None => {
                let mut random = [0_u8; 16];
                getrandom::fill(&mut random).ok();
                let Ok(hash) = self.hash_blocking(&format!("{random:?}")) else {
                    return;
                };
                if let Ok(mut slot) = DUMMY.lock() {
                    *slot = Some((self.params.clone(), hash.clone()));
                }
                hash
            }
        };
        if let Ok(hash) = PasswordHash::new(&dummy) {
            HASHER_RUNS.fetch_add(1, Ordering::Relaxed);
            let _ = self.argon2().verify_password(password.as_bytes(), &hash);
        }
    }

    /// Hashes `password` on Tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Hasher::hash_blocking`].
    pub async fn make_password(&self, password: &str) -> Result<String, HashError> {
        let (hasher, password) = (self.clone(), password.to_owned());
        tokio::task::spawn_blocking(move || hasher.hash_blocking(&password))
            .await
            .map_err(|error| HashError::Failed(error.to_string()))?
    }

    /// Checks `password` against `encoded` on Tokio's blocking pool.
    pub async fn check_password(&self, password: &str, encoded: &str) -> Verification {
        let (hasher, password, encoded) = (self.clone(), password.to_owned(), encoded.to_owned());
        tokio::task::spawn_blocking(move || hasher.verify_blocking(&password, &encoded))
            .await
            .unwrap_or(Verification {
                valid: false,
                needs_rehash: false,
            })
    }
}

/// Makes the settings' parameters the current ones: called when a project
/// is built and by the password commands.
///
/// # Errors
///
/// As [`Hasher::from_settings`].
pub fn configure(settings: &Settings) -> Result<(), HashError> {
    let hasher = Hasher::from_settings(settings)?;
    if let Ok(mut current) = CURRENT.write() {
        *current = Some(hasher);
    }
    Ok(())
}

/// Hashes `password` with the current parameters (Django's `make_password`).
///
/// # Errors
///
/// As [`Hasher::hash_blocking`].
pub async fn make_password(password: &str) -> Result<String, HashError> {
    Hasher::current().make_password(password).await
}

/// Checks `password` against a stored hash with the current parameters.
pub async fn check_password(password: &str, encoded: &str) -> Verification {
    Hasher::current().check_password(password, encoded).await
}

/// A value for `User::password` that no password matches (Django's
/// `set_unusable_password`): for accounts that log in another way. Random,
/// so two unusable passwords never compare equal.
#[must_use]
pub fn make_unusable_password() -> String {
    let mut random = [0_u8; 20];
    getrandom::fill(&mut random).ok();
    let mut out = String::from(UNUSABLE_PASSWORD_PREFIX);
    for byte in random {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Whether a stored value can ever match a password.
#[must_use]
pub fn is_password_usable(encoded: &str) -> bool {
    !encoded.starts_with(UNUSABLE_PASSWORD_PREFIX)
}

/// Argon2 runs since the process started (see the module docs).
#[must_use]
pub fn hasher_runs() -> u64 {
    HASHER_RUNS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check behaviour, not cost.
    fn weak() -> Hasher {
        Hasher::new(8, 1, 1).unwrap()
    }

    #[test]
    fn a_hash_is_argon2id_in_phc_format_with_its_parameters() {
        let hash = weak().hash_blocking("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
        let again = weak().hash_blocking("s3cret").unwrap();
        assert_ne!(hash, again, "each hash has its own salt");
    }

    #[test]
    fn the_right_password_verifies_and_a_wrong_one_does_not() {
        let hash = weak().hash_blocking("s3cret").unwrap();
        assert_eq!(
            weak().verify_blocking("s3cret", &hash),
            Verification {
                valid: true,
                needs_rehash: false
            }
        );
        assert!(!weak().verify_blocking("s3cret!", &hash).valid);
        assert!(!weak().verify_blocking("", &hash).valid);
    }

    #[test]
    fn a_hash_with_other_parameters_needs_rehash_only_when_valid() {
        let old = weak().hash_blocking("s3cret").unwrap();
        let stronger = Hasher::new(16, 2, 1).unwrap();
        let verification = stronger.verify_blocking("s3cret", &old);
        assert!(verification.valid, "old parameters still verify");
        assert!(verification.needs_rehash);
        assert!(!stronger.verify_blocking("wrong", &old).needs_rehash);
    }

    #[test]
    fn unusable_and_garbage_hashes_never_match_but_still_run_argon2() {
        let unusable = make_unusable_password();
        assert!(unusable.starts_with('!') && unusable.len() == 41);
        assert!(!is_password_usable(&unusable));
        assert_ne!(unusable, make_unusable_password());
        for stored in [unusable.as_str(), "", "plaintext", "$argon2id$garbage"] {
            let before = hasher_runs();
            assert!(!weak().verify_blocking(stored, stored).valid, "{stored}");
            assert!(hasher_runs() > before, "{stored:?} skipped the hasher");
        }
    }

    #[test]
    fn bad_parameters_are_refused_with_the_fix() {
        let error = Hasher::new(1, 0, 1).unwrap_err().to_string();
        assert!(error.contains("password_hash_iterations"), "{error}");
        let settings = Settings::defaults_for(true);
        assert_eq!(Hasher::from_settings(&settings).unwrap(), Hasher::default());
    }

    /// The per-login cost of the default parameters on this machine, for
    /// the performance notes: `cargo test -p kiln --release --lib
    /// reports_the_cost -- --ignored --nocapture`. Not a timed assertion.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn reports_the_cost_of_one_login_with_the_default_parameters() {
        let hasher = Hasher::default();
        let hash = hasher.hash_blocking("s3cret").unwrap();
        let started = std::time::Instant::now();
        let rounds = 20;
        for _ in 0..rounds {
            assert!(hasher.verify_blocking("s3cret", &hash).valid);
        }
        let each = started.elapsed() / rounds;
        println!("argon2id m=19456 KiB, t=2, p=1: {each:?} per verification");
    }

    #[tokio::test]
    async fn async_functions_hash_off_the_reactor_and_agree_with_blocking_ones() {
        let hash = weak().make_password("s3cret").await.unwrap();
        assert!(weak().check_password("s3cret", &hash).await.valid);
        assert!(weak().verify_blocking("s3cret", &hash).valid);
    }
}

//! Signed values, as Django's `django.core.signing`: a value plus an
//! HMAC-SHA256 signature, so a client can read it but neither forge nor
//! alter it.
//!
//! A [`Signer`] is keyed from the `secret_key` and a *salt* naming its use
//! (`"kiln.messages"`, `"myapp.unsubscribe"`), so a value signed for one
//! purpose is refused by every other. The HMAC key is SHA-256 of the salt
//! and the secret (Django's `salted_hmac`), never the secret itself.
//!
//! Keys can be rotated without logging everyone out: put the old secret in
//! `secret_key_fallbacks` and the new one in `secret_key`. Values signed
//! with a fallback key still verify; new values are signed with
//! `secret_key` only. Remove the fallback once the old values have expired.
//!
//! Signed is not encrypted: never sign a secret you would not show the
//! client.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use kiln::security::signing::{Signer, SigningError};
//!
//! let signer = Signer::new("a-long-random-secret-key-0123456789", &[], "myapp.unsubscribe");
//! let token = signer.sign("user:42");
//! assert_eq!(signer.unsign(&token).unwrap(), "user:42");
//! assert!(signer.unsign(&token.replace("42", "43")).is_err());
//!
//! let timed = signer.sign_timestamped("user:42");
//! assert_eq!(signer.unsign_timestamped(&timed, Duration::from_secs(3600)).unwrap(), "user:42");
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::settings::Settings;

type HmacSha256 = Hmac<Sha256>;

/// What separates a value from its timestamp and its signature. Base64url
/// and decimal digits never contain it, so the last two are found by
/// splitting from the right, and the value itself may contain it.
const SEP: char = ':';

/// Signs and verifies values for one use (the salt); see the [module docs](self).
#[derive(Clone)]
pub struct Signer {
    /// Derived HMAC keys: the first signs, every one verifies.
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Why a signed value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// No signature, or not in the shape `Signer` writes.
    #[error("the value is not signed (no `value:signature` shape)")]
    Malformed,
    /// The signature does not match the value under any key: the value was
    /// altered, signed for another salt, or with a key no longer accepted.
    #[error(
        "bad signature: the value was altered, signed for another use, or with a key that is neither `secret_key` nor in `secret_key_fallbacks`"
    )]
    BadSignature,
    /// The signature is good but older than the allowed age.
    #[error("the signature is {age:?} old, more than the {max_age:?} allowed")]
    Expired {
        /// How old the signature is.
        age: Duration,
        /// The most allowed.
        max_age: Duration,
    },
}

impl Signer {
    /// A signer keyed from `secret` (which signs and verifies) and
    /// `fallbacks` (which only verify), for the use named by `salt`.
    #[must_use]
    pub fn new(secret: &str, fallbacks: &[&str], salt: &str) -> Self {
        let keys = std::iter::once(secret)
            .chain(fallbacks.iter().copied())
            .map(|secret| derive_key(salt, secret))
            .collect();
        Self { keys }
    }

    /// A signer for `salt` keyed from the `secret_key` and
    /// `secret_key_fallbacks` settings.
    #[must_use]
    pub fn from_settings(settings: &Settings, salt: &str) -> Self {
        let secret = settings
            .secret_key
            .as_ref()
            .map_or("", crate::settings::Secret::expose);
        let fallbacks: Vec<&str> = settings
            .secret_key_fallbacks
            .iter()
            .map(crate::settings::Secret::expose)
            .collect();
        Self::new(secret, &fallbacks, salt)
    }

    /// `value:signature`, the signature made with the current key.
    #[must_use]
    pub fn sign(&self, value: &str) -> String {
        let signature = URL_SAFE_NO_PAD.encode(self.mac(0, value).finalize().into_bytes());
        format!("{value}{SEP}{signature}")
    }

    /// The value of a string made by [`Signer::sign`], when its signature
    /// matches under the current key or a fallback key. The comparison is
    /// constant-time.
    ///
    /// # Errors
    ///
    /// [`SigningError::Malformed`] or [`SigningError::BadSignature`].
    pub fn unsign<'a>(&self, signed: &'a str) -> Result<&'a str, SigningError> {
        let (value, signature) = signed.rsplit_once(SEP).ok_or(SigningError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| SigningError::BadSignature)?;
        let verified = (0..self.keys.len())
            .any(|index| self.mac(index, value).verify_slice(&signature).is_ok());
        if verified {
            Ok(value)
        } else {
            Err(SigningError::BadSignature)
        }
    }

    /// Signs `value` with the current time, for [`Signer::unsign_timestamped`].
    #[must_use]
    pub fn sign_timestamped(&self, value: &str) -> String {
        self.sign(&format!("{value}{SEP}{}", unix_now()))
    }

    /// The value of a string made by [`Signer::sign_timestamped`], when its
    /// signature matches and is at most `max_age` old.
    ///
    /// # Errors
    ///
    /// As [`Signer::unsign`], and [`SigningError::Expired`].
    pub fn unsign_timestamped<'a>(
        &self,
        signed: &'a str,
        max_age: Duration,
    ) -> Result<&'a str, SigningError> {
        let stamped = self.unsign(signed)?;
        let (value, timestamp) = stamped.rsplit_once(SEP).ok_or(SigningError::Malformed)?;
        let signed_at: u64 = timestamp.parse().map_err(|_| SigningError::Malformed)?;
        let age = Duration::from_secs(unix_now().saturating_sub(signed_at));
        if age > max_age {
            return Err(SigningError::Expired { age, max_age });
        }
        Ok(value)
    }

    fn mac(&self, index: usize, value: &str) -> HmacSha256 {
        // A 32-byte key is always a valid HMAC key; the fallback never runs.
        let mut mac = HmacSha256::new_from_slice(&self.keys[index])
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(value.as_bytes());
        mac
    }
}

/// Django's `salted_hmac` key: SHA-256 of the salt, a fixed label and the
/// secret, so each use gets its own key and the secret is never the HMAC
/// key itself.
fn derive_key(salt: &str, secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(b"signer");
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_keep_uses_apart() {
        let a = Signer::new("secret", &[] as &[&str], "a");
        let b = Signer::new("secret", &[] as &[&str], "b");
        assert_eq!(b.unsign(&a.sign("x")), Err(SigningError::BadSignature));
    }

    #[test]
    fn values_may_contain_the_separator() {
        let signer = Signer::new("secret", &[] as &[&str], "a");
        assert_eq!(signer.unsign(&signer.sign("a:b:c")), Ok("a:b:c"));
        assert_eq!(signer.unsign("no-signature"), Err(SigningError::Malformed));
    }
}

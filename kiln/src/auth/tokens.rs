//! Password reset tokens (Django's `PasswordResetTokenGenerator`).
//!
//! A token is `<timestamp>-<mac>`: the time it was made, in base 36, and an
//! HMAC-SHA256 (keyed by the `secret_key`) over the user's id, password
//! hash, last login and email, and that time. Nothing is stored: the token
//! stops working by itself
//!
//! - once it is used, because setting the new password changes the hash;
//! - after `password_reset_timeout` (3 days by default);
//! - when the user logs in meanwhile (the last login changes), or changes
//!   email address.
//!
//! The MAC is compared in constant time.
//!
//! # Examples
//!
//! ```
//! use kiln::auth::tokens::PasswordResetTokens;
//! # let user = kiln::auth::user::Model {
//! #     id: 7,
//! #     password: "$argon2id$...".into(),
//! #     ..kiln::auth::user::Model::unsaved("jane", "jane@example.com")
//! # };
//! let tokens = PasswordResetTokens::new("a secret key of 32 characters or more", std::time::Duration::from_secs(3600));
//! let token = tokens.make_token(&user);
//! assert!(tokens.check_token(&user, &token));
//! assert!(!tokens.check_token(&user, "1-deadbeef"));
//! ```

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::auth::user;
use crate::settings::Settings;

/// Separates what the MAC covers so that no two inputs read the same.
const KEY_SALT: &str = "kiln.auth.tokens.PasswordResetTokens";

/// Bytes of the HMAC kept in the token: 128 bits, as many as Django keeps.
const MAC_LEN: usize = 16;

/// Makes and checks password reset tokens.
#[derive(Clone)]
pub struct PasswordResetTokens {
    /// The current key first, then fallbacks that still verify (key rotation).
    keys: Vec<[u8; 32]>,
    timeout: Duration,
}

impl std::fmt::Debug for PasswordResetTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordResetTokens")
            .field("keys", &self.keys.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PasswordResetTokens {
    /// Tokens signed with `secret` that live for `timeout`.
    #[must_use]
    pub fn new(secret: &str, timeout: Duration) -> Self {
        Self {
            keys: vec![derive_key(secret)],
            timeout,
        }
    }

    /// Also accept tokens signed with these older secrets, so that rotating
    /// the secret key does not void the links already mailed.
    #[must_use]
    pub fn with_fallbacks<'a>(mut self, secrets: impl IntoIterator<Item = &'a str>) -> Self {
        self.keys.extend(secrets.into_iter().map(derive_key));
        self
    }

    /// Tokens for the project's settings: its `secret_key` (the development
    /// key in debug mode when none is set), `secret_key_fallbacks` (links
    /// mailed before a key rotation still work) and `password_reset_timeout`.
    #[must_use]
    pub fn from_settings(settings: &Settings) -> Self {
        let secret = settings
            .secret_key
            .as_ref()
            .map_or("", crate::settings::Secret::expose);
        Self::new(secret, settings.password_reset_timeout.0).with_fallbacks(
            settings
                .secret_key_fallbacks
                .iter()
                .map(crate::settings::Secret::expose),
        )
    }

    /// A token for `user`, valid from now.
    #[must_use]
    pub fn make_token(&self, user: &user::Model) -> String {
        self.make_token_at(user, now())
    }

    fn make_token_at(&self, user: &user::Model, timestamp: u64) -> String {
        let mac = self.mac(&self.keys[0], user, timestamp);
        let mut token = to_base36(timestamp);
        token.push('-');
        for byte in &mac[..MAC_LEN] {
            token.push_str(&format!("{byte:02x}"));
        }
        token
    }

    /// Whether `token` was made for `user` (as it is now) and has not
    /// expired. Malformed tokens are simply invalid.
    #[must_use]
    pub fn check_token(&self, user: &user::Model, token: &str) -> bool {
        self.check_token_at(user, token, now())
    }

    fn check_token_at(&self, user: &user::Model, token: &str, now: u64) -> bool {
        let Some((timestamp, mac)) = token.split_once('-') else {
            return false;
        };
        let (Some(timestamp), Some(mac)) = (from_base36(timestamp), from_hex(mac)) else {
            return false;
        };
        if mac.len() != MAC_LEN || now.saturating_sub(timestamp) > self.timeout.as_secs() {
            return false;
        }
        self.keys.iter().any(|key| {
            // `verify_truncated_left` compares in constant time.
            self.hmac(key, user, timestamp)
                .verify_truncated_left(&mac)
                .is_ok()
        })
    }

    fn hmac(&self, key: &[u8; 32], user: &user::Model, timestamp: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let last_login = user
            .last_login
            .map(|at| at.timestamp().to_string())
            .unwrap_or_default();
        // Each part is length-prefixed so that no two users' inputs collide.
        for part in [
            user.id.to_string().as_str(),
            &user.password,
            &last_login,
            &user.email,
            &timestamp.to_string(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn mac(&self, key: &[u8; 32], user: &user::Model, timestamp: u64) -> Vec<u8> {
        self.hmac(key, user, timestamp)
            .finalize()
            .into_bytes()
            .to_vec()
    }
}

/// The HMAC key: SHA-256 of a salt and the secret, so the secret itself is
/// never a key and tokens cannot be replayed as other signed values.
fn derive_key(secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(KEY_SALT.as_bytes());
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn to_base36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn from_base36(text: &str) -> Option<u64> {
    // 13 base-36 digits exceed u64; refuse long input before parsing.
    (!text.is_empty() && text.len() <= 13)
        .then(|| u64::from_str_radix(text, 36).ok())
        .flatten()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    fn user(id: i64) -> user::Model {
        user::Model {
            id,
            password: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
            ..user::Model::unsaved(&format!("user{id}"), &format!("user{id}@example.com"))
        }
    }

    fn tokens() -> PasswordResetTokens {
        PasswordResetTokens::new("test secret key", Duration::from_secs(3 * DAY))
    }

    #[test]
    fn a_fresh_token_is_valid_for_its_user() {
        let jane = user(1);
        let token = tokens().make_token(&jane);
        assert!(tokens().check_token(&jane, &token));
        let (timestamp, mac) = token.split_once('-').unwrap();
        assert!(from_base36(timestamp).is_some());
        assert_eq!(mac.len(), 2 * MAC_LEN);
    }

    #[test]
    fn a_used_token_is_refused_once_the_password_changed() {
        let mut jane = user(1);
        let token = tokens().make_token(&jane);
        jane.password = "$argon2id$v=19$m=8,t=1,p=1$bmV3c2FsdA$bmV3aGFzaA".to_owned();
        assert!(!tokens().check_token(&jane, &token));
    }

    #[test]
    fn a_token_is_refused_after_a_login_since() {
        let mut jane = user(1);
        let token = tokens().make_token(&jane);
        jane.last_login = Some(chrono::Utc::now());
        assert!(!tokens().check_token(&jane, &token));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let jane = user(1);
        let made = 1_800_000_000;
        let token = tokens().make_token_at(&jane, made);
        assert!(tokens().check_token_at(&jane, &token, made + 3 * DAY));
        assert!(!tokens().check_token_at(&jane, &token, made + 3 * DAY + 1));
    }

    #[test]
    fn a_tampered_or_malformed_token_is_refused() {
        let jane = user(1);
        let token = tokens().make_token(&jane);
        let (timestamp, mac) = token.split_once('-').unwrap();
        // A later timestamp with the old MAC (to extend the token's life).
        let later = to_base36(from_base36(timestamp).unwrap() + 1);
        assert!(!tokens().check_token(&jane, &format!("{later}-{mac}")));
        let mut flipped = mac.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(!tokens().check_token(&jane, &format!("{timestamp}-{flipped}")));
        for bad in [
            "",
            "-",
            "zzzzzzzzzzzzzzzzzz-00",
            "1-",
            "1-0",
            "1-é1",
            &token[..10],
        ] {
            assert!(!tokens().check_token(&jane, bad), "{bad:?}");
        }
        let other_key = PasswordResetTokens::new("another key", Duration::from_secs(DAY));
        assert!(!other_key.check_token(&jane, &token));
    }

    #[test]
    fn another_users_token_is_refused() {
        let token = tokens().make_token(&user(1));
        assert!(!tokens().check_token(&user(2), &token));
    }

    #[test]
    fn fallback_keys_accept_tokens_made_before_a_rotation() {
        let jane = user(1);
        let old = PasswordResetTokens::new("old key", Duration::from_secs(DAY));
        let token = old.make_token(&jane);
        let rotated = PasswordResetTokens::new("new key", Duration::from_secs(DAY))
            .with_fallbacks(["old key"]);
        assert!(rotated.check_token(&jane, &token));
        // New tokens are signed with the new key only.
        assert!(!old.check_token(&jane, &rotated.make_token(&jane)));
    }

    #[test]
    fn settings_fallback_keys_keep_mailed_links_working() {
        let jane = user(1);
        let mut settings = Settings::defaults_for(true);
        settings.secret_key = Some(crate::settings::Secret::new("old key"));
        let token = PasswordResetTokens::from_settings(&settings).make_token(&jane);
        settings.secret_key = Some(crate::settings::Secret::new("new key"));
        assert!(!PasswordResetTokens::from_settings(&settings).check_token(&jane, &token));
        settings.secret_key_fallbacks = vec![crate::settings::Secret::new("old key")];
        assert!(PasswordResetTokens::from_settings(&settings).check_token(&jane, &token));
    }
}

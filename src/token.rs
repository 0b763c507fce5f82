//! Signed playback tokens: what media playlist and segment URLs carry in
//! place of the account's `api_key`.
//!
//! A token grants one user one media item until it expires, and names the
//! viewer session and player it was issued to (so a segment request moves
//! that player's playhead). It is an HMAC-SHA256 (RFC 2104) over its
//! fields with the server's secret (`--secret`), so any node holding the
//! same secret can check it without a lookup, and an HTTP cache in front
//! of hlsd can key segments on the path alone. Format (URL-safe, no
//! padding): `base64url(fields) "." base64url(mac)`, where fields are
//! `v1.{expires_unix_s}.{media_id}.{session_id}.{player}.{user}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The user it was issued to.
    pub user: String,
    /// The media item it opens.
    pub media_id: Uuid,
    /// The viewer session it belongs to.
    pub session_id: Uuid,
    /// The player (one master playlist fetch) within the session.
    pub player: u32,
    /// Expiry, in seconds since the Unix epoch.
    pub expires_unix_s: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token hlsd wrote, or altered, or signed with another secret.
    #[error("the playback token is invalid")]
    Invalid,
    /// Valid, but past its expiry.
    #[error("the playback token has expired; load the stream again")]
    Expired,
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: <secret> }")
    }
}

/// `n` bytes from the operating system's random source.
///
/// # Panics
/// When the system has no random source (`getrandom(2)` failing): no
/// secret can be made without one.
pub fn random_key(n: usize) -> Vec<u8> {
    let mut key = vec![0u8; n];
    getrandom::fill(&mut key).expect("the system's random source");
    key
}

/// Seconds since the Unix epoch, now.
pub fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Signer {
    /// A signer with `secret` (any length; HMAC hashes long keys).
    pub fn new(secret: &[u8]) -> Self {
        Signer {
            key: secret.to_vec(),
        }
    }

    /// A signer with a random 32-byte secret: its tokens die with the
    /// process (tests; a node keeps its secret, [`crate::secret`]).
    pub fn random() -> Self {
        Signer {
            key: random_key(32),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length")
    }

    /// The token for `grant`.
    pub fn sign(&self, grant: &Grant) -> String {
        let fields = format!(
            "v1.{}.{}.{}.{}.{}",
            grant.expires_unix_s,
            grant.media_id.simple(),
            grant.session_id.simple(),
            grant.player,
            grant.user
        );
        let mut mac = self.mac();
        mac.update(fields.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(fields),
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// The grant in `token`, if this secret signed it and it has not
    /// expired at `now_unix_s`.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] for anything not signed with this secret,
    /// [`TokenError::Expired`] past its expiry.
    pub fn verify(&self, token: &str, now_unix_s: u64) -> Result<Grant, TokenError> {
        let (fields_b64, mac_b64) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let fields = URL_SAFE_NO_PAD
            .decode(fields_b64)
            .map_err(|_| TokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(mac_b64)
            .map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&fields);
        // Constant-time comparison.
        mac.verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let fields = String::from_utf8(fields).map_err(|_| TokenError::Invalid)?;
        let mut parts = fields.splitn(6, '.');
        let mut next = || parts.next().ok_or(TokenError::Invalid);
        if next()? != "v1" {
            return Err(TokenError::Invalid);
        }
        let expires_unix_s = next()?.parse().map_err(|_| TokenError::Invalid)?;
        let media_id = Uuid::parse_str(next()?).map_err(|_| TokenError::Invalid)?;
        let session_id = Uuid::parse_str(next()?).map_err(|_| TokenError::Invalid)?;
        let player = next()?.parse().map_err(|_| TokenError::Invalid)?;
        let user = next()?.to_string();
        if now_unix_s > expires_unix_s {
            return Err(TokenError::Expired);
        }
        Ok(Grant {
            user,
            media_id,
            session_id,
            player,
            expires_unix_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            user: "al.ice:x".into(),
            media_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            player: 3,
            expires_unix_s: 2_000,
        }
    }

    #[test]
    fn a_token_round_trips_and_is_url_safe() {
        let s = Signer::new(b"secret");
        let g = grant();
        let t = s.sign(&g);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
        assert_eq!(s.verify(&t, 1_999), Ok(g.clone()));
        assert_eq!(s.verify(&t, 2_000), Ok(g));
    }

    #[test]
    fn expired_altered_and_foreign_tokens_are_refused() {
        let s = Signer::new(b"secret");
        let t = s.sign(&grant());
        assert_eq!(s.verify(&t, 2_001), Err(TokenError::Expired));
        assert_eq!(
            Signer::new(b"other").verify(&t, 0),
            Err(TokenError::Invalid)
        );
        // Another media id with the old signature.
        let (fields, mac) = t.split_once('.').unwrap();
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(fields).unwrap()).unwrap();
        let mut parts: Vec<&str> = text.splitn(6, '.').collect();
        let other = Uuid::new_v4().simple().to_string();
        parts[2] = &other;
        let forged = format!("{}.{mac}", URL_SAFE_NO_PAD.encode(parts.join(".")));
        assert_eq!(s.verify(&forged, 0), Err(TokenError::Invalid));
        for junk in ["", ".", "abc", "a.b.c", "%%%.%%%"] {
            assert_eq!(s.verify(junk, 0), Err(TokenError::Invalid), "{junk}");
        }
        assert_eq!(Signer::random().verify(&t, 0), Err(TokenError::Invalid));
    }
}

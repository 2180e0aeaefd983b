//! User tokens for `GET /v1/profile`.
//!
//! A token is `<exp>.<base64url_nopad(HMAC-SHA256(secret, "<exp>.<userId>"))>`: the site's
//! or app's own back end, which knows who is signed in, issues it with the secret it
//! shares with the collector. The user id is not in the token: it is bound by the MAC, so a
//! token for one user never opens another user's profile. No server-side state, no
//! revocation list: expiry is the only way a token ends, so issue short-lived ones.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused; the text is what the client sees in `{"error": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Not `<digits>.<base64url>`.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match this user id (another user's token, or the wrong secret).
    #[error("token is not valid for this user")]
    WrongUser,
    /// `exp` is not in the future.
    #[error("token expired")]
    Expired,
    /// HMAC refused the key (it takes keys of any length, so this does not happen).
    #[error("the profile secret cannot be used as an HMAC key")]
    BadSecret,
}

/// The token for `user_id`, valid until `exp` (Unix seconds).
pub fn issue(secret: &[u8], user_id: &str, exp: u64) -> Result<String, TokenError> {
    let tag = mac(secret, exp, user_id)?.finalize().into_bytes();
    Ok(format!("{exp}.{}", URL_SAFE_NO_PAD.encode(tag)))
}

/// Checks `token` for `user_id` at `now` (Unix seconds). The MAC is checked before the
/// expiry, so an expired forgery is reported as a forgery.
pub fn verify(secret: &[u8], token: &str, user_id: &str, now: u64) -> Result<(), TokenError> {
    let (exp_text, tag_text) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if exp_text.is_empty() || !exp_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed);
    }
    let exp: u64 = exp_text.parse().map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD.decode(tag_text).map_err(|_| TokenError::Malformed)?;
    // `verify_slice` compares in constant time.
    mac(secret, exp, user_id)?.verify_slice(&tag).map_err(|_| TokenError::WrongUser)?;
    if exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(())
}

fn mac(secret: &[u8], exp: u64, user_id: &str) -> Result<HmacSha256, TokenError> {
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| TokenError::BadSecret)?;
    mac.update(format!("{exp}.{user_id}").as_bytes());
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::{issue, verify, TokenError};

    #[test]
    fn round_trip_and_refusals() {
        let token = issue(b"s3cret", "u-1", 2_000).unwrap_or_default();
        assert_eq!(verify(b"s3cret", &token, "u-1", 1_999), Ok(()));
        assert_eq!(verify(b"s3cret", &token, "u-1", 2_000), Err(TokenError::Expired));
        assert_eq!(verify(b"s3cret", &token, "u-2", 1_000), Err(TokenError::WrongUser));
        assert_eq!(verify(b"other", &token, "u-1", 1_000), Err(TokenError::WrongUser));
        // Moving the expiry breaks the MAC.
        let (_, tag) = token.split_once('.').unwrap_or_default();
        assert_eq!(verify(b"s3cret", &format!("9999.{tag}"), "u-1", 1_000), Err(TokenError::WrongUser));
        for bad in ["", "abc", "12", ".x", "x.y", "-1.AAAA", "1.***", "1.2.3"] {
            assert_eq!(verify(b"s3cret", bad, "u-1", 0), Err(TokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn matches_an_independent_implementation() {
        // Computed with Python's hmac module (and what examples/token-issuer/issue.mjs
        // prints for the same input): the format is the contract with sites' back ends.
        assert_eq!(
            issue(b"s3cret", "u-123", 1_700_000_000).as_deref(),
            Ok("1700000000.jkbtyYGcN_2abRrw3sIvT6OtA6c6b6ZYcVJsGPcUJxg")
        );
    }
}

//! Who a request is, once its token was checked: the principal that rate limits count and
//! HTTP sessions belong to. Below both the token check ([`auth`](super::auth)) and the limits
//! ([`rate`](super::rate)), which use it.

use std::sync::Arc;

/// Marks a request that presented a valid token (the landing page shows more to it), with who
/// presented it: a key for a static token (a digest, never the token) or an OAuth token's issuer
/// and subject. Rate limits count per principal, and an HTTP session belongs to the principal
/// that opened it.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) Arc<str>);

impl Authenticated {
    /// A configured token's digest and principal (the digest in base64, never the token).
    pub(super) fn token(token: &str) -> ([u8; 32], Arc<str>) {
        let digest = digest(token);
        let principal = format!(
            "token:{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, digest)
        );
        (digest, principal.into())
    }

    #[cfg(feature = "oauth")]
    pub(super) fn caller(caller: &crate::session::Caller) -> Self {
        Self(
            format!(
                "oauth:{}\n{}",
                caller.issuer,
                caller
                    .subject
                    .as_deref()
                    .or(caller.email.as_deref())
                    .unwrap_or_default()
            )
            .into(),
        )
    }
}

/// SHA-256 of a token: what is compared and kept instead of the token.
pub(crate) fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

//! Checking one access token: its algorithm and header, the key that signed it, and its claims
//! (`iss`, `aud`, `exp`, `nbf`, scopes).

use std::{collections::HashSet, sync::Arc, time::Duration};

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind as JwtError};

use super::super::jwks::KeySet;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = crate::session::TOKEN_LEEWAY_SECS;
/// Longer tokens are refused without parsing.
const MAX_TOKEN: usize = 16 * 1024;
/// The header Cloudflare Access adds to requests it let through.
const CF_ACCESS_HEADER: &str = "cf-access-jwt-assertion";

/// Where a verifier finds its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// `Authorization: Bearer` (or the WebSocket `bearer.` subprotocol).
    Bearer,
    CfAccess,
}

#[derive(Debug)]
pub(super) enum Keys {
    /// One key set for every issuer.
    Shared(KeySet),
    /// Each issuer's own, found through its metadata.
    PerIssuer(Vec<(String, KeySet)>),
}

#[derive(Debug)]
pub(super) struct Verifier {
    pub(super) source: Source,
    pub(super) issuers: Vec<String>,
    /// Empty: the resource URL.
    pub(super) audiences: Vec<String>,
    pub(super) scopes: Vec<String>,
    pub(super) keys: Keys,
}

/// The outcome of checking a request's tokens.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Kept in the request's extensions, for [`Context::caller`](crate::Context::caller).
    Valid(Arc<crate::session::Caller>),
    Missing,
    Invalid(&'static str),
    InsufficientScope,
    /// No keys to check against (the JWKS could not be fetched yet).
    Unavailable,
}

/// Checks the request's tokens with every verifier; the first valid one wins.
pub(super) async fn first_valid(
    verifiers: &[Verifier],
    headers: &HeaderMap,
    bearer: Option<&str>,
    resource: impl Fn() -> String,
) -> Verdict {
    let mut verdict = Verdict::Missing;
    for verifier in verifiers {
        let token = match verifier.source {
            Source::Bearer => bearer,
            Source::CfAccess => headers.get(CF_ACCESS_HEADER).and_then(|v| v.to_str().ok()),
        };
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            continue;
        };
        let outcome = verifier.verify(token, &resource).await;
        // Report the most telling failure: a scope problem, then an outage, then a bad token.
        verdict = match (outcome, verdict) {
            (Verdict::Valid(claims), _) => return Verdict::Valid(claims),
            (_, Verdict::InsufficientScope) | (Verdict::InsufficientScope, _) => {
                Verdict::InsufficientScope
            }
            (_, Verdict::Unavailable) | (Verdict::Unavailable, _) => Verdict::Unavailable,
            (Verdict::Invalid(why), _) => Verdict::Invalid(why),
            (_, previous) => previous,
        };
    }
    verdict
}

#[derive(serde::Deserialize)]
struct TokenClaims {
    iss: String,
    sub: Option<String>,
    /// Required by the validation; kept to close WebSocket sessions in time.
    /// A NumericDate: seconds, possibly fractional.
    exp: Option<f64>,
    email: Option<String>,
    /// OAuth's space-separated `scope`.
    scope: Option<String>,
    /// Some servers (Azure AD, Okta) say `scp`, a list or a string.
    scp: Option<ScopeList>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ScopeList {
    One(String),
    Many(Vec<String>),
}

impl TokenClaims {
    fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self
            .scope
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect();
        match &self.scp {
            Some(ScopeList::One(s)) => scopes.extend(s.split_whitespace().map(str::to_owned)),
            Some(ScopeList::Many(list)) => scopes.extend(list.iter().cloned()),
            None => {}
        }
        scopes
    }
}

/// Whether the token's JOSE header carries `crit`.
fn has_crit(token: &str) -> bool {
    use base64::Engine as _;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).ok()
        })
        .is_some_and(|header| header.contains_key("crit"))
}

impl Verifier {
    async fn verify(&self, token: &str, resource: impl FnOnce() -> String) -> Verdict {
        if token.len() > MAX_TOKEN {
            return Verdict::Invalid("token too long");
        }
        // `none`, HS* and anything else but RS256/ES256 fail here or just below.
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Verdict::Invalid("malformed token or unsupported algorithm");
        };
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Verdict::Invalid("unsupported algorithm");
        }
        // RFC 7515 §4.1.11: a `crit` header names extensions the recipient must understand or
        // reject the token; we understand none (jsonwebtoken ignores the field).
        if has_crit(token) {
            return Verdict::Invalid(
                "token has a critical header extension (crit) we do not support",
            );
        }
        let keys = match &self.keys {
            Keys::Shared(keys) => keys,
            Keys::PerIssuer(sets) => {
                // The signature is not checked yet: `iss` only picks the key set to check it with.
                #[derive(serde::Deserialize)]
                struct Issuer {
                    iss: String,
                }
                let issuer = jsonwebtoken::dangerous::insecure_decode_claims::<Issuer>(token);
                let Some((_, keys)) = issuer
                    .ok()
                    .and_then(|claims| sets.iter().find(|(i, _)| *i == claims.iss))
                else {
                    return Verdict::Invalid("unknown issuer");
                };
                keys
            }
        };
        let Some(candidates) = keys.keys(header.kid.as_deref()).await else {
            return Verdict::Unavailable;
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&self.issuers);
        if self.audiences.is_empty() {
            validation.set_audience(&[resource()]);
        } else {
            validation.set_audience(&self.audiences);
        }
        let mut matching = candidates.iter().filter(|k| {
            k.algorithm == header.alg
                && (header.kid.is_none() || k.kid.as_deref() == header.kid.as_deref())
        });
        let mut why = "no key matches the token's kid";
        // Without a `kid`, each key of the right type is tried (a handful at most).
        for key in matching.by_ref().take(8) {
            match jsonwebtoken::decode::<TokenClaims>(token, &key.key, &validation) {
                Ok(data) => return self.authorize(data.claims),
                Err(e) => {
                    why = describe(e.kind());
                    if why != "bad signature" {
                        break;
                    }
                }
            }
        }
        Verdict::Invalid(why)
    }

    fn authorize(&self, claims: TokenClaims) -> Verdict {
        let scopes = claims.scopes();
        let granted: HashSet<&str> = scopes.iter().map(String::as_str).collect();
        if !self.scopes.iter().all(|s| granted.contains(s.as_str())) {
            return Verdict::InsufficientScope;
        }
        Verdict::Valid(Arc::new(crate::session::Caller {
            issuer: claims.iss,
            subject: claims.sub,
            email: claims.email,
            scopes,
            expires_at: claims
                .exp
                .and_then(|exp| Duration::try_from_secs_f64(exp).ok())
                .and_then(|exp| std::time::UNIX_EPOCH.checked_add(exp)),
        }))
    }
}

/// Whether a token refused for `why` was still the issuer's own: these are found only once its
/// signature checked out (an expired token, one for another server), so it is no guess.
pub(crate) fn genuine(why: &str) -> bool {
    matches!(
        why,
        "token expired"
            | "token not yet valid"
            | "wrong audience"
            | "wrong issuer"
            | "a required claim is missing"
    )
}

fn describe(kind: &JwtError) -> &'static str {
    match kind {
        JwtError::ExpiredSignature => "token expired",
        JwtError::ImmatureSignature => "token not yet valid",
        JwtError::InvalidAudience => "wrong audience",
        JwtError::InvalidIssuer => "wrong issuer",
        JwtError::InvalidSignature => "bad signature",
        JwtError::MissingRequiredClaim(_) => "a required claim is missing",
        JwtError::InvalidAlgorithm => "unsupported algorithm",
        _ => "malformed token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_forged_or_garbled_tokens_are_guesses() {
        for kind in [
            JwtError::ExpiredSignature,
            JwtError::ImmatureSignature,
            JwtError::InvalidAudience,
            JwtError::InvalidIssuer,
            JwtError::MissingRequiredClaim("exp".into()),
        ] {
            assert!(genuine(describe(&kind)), "{kind:?}");
        }
        for kind in [
            JwtError::InvalidSignature,
            JwtError::InvalidAlgorithm,
            JwtError::InvalidToken,
        ] {
            assert!(!genuine(describe(&kind)), "{kind:?}");
        }
    }

    fn claims(json: serde_json::Value) -> TokenClaims {
        serde_json::from_value(json).expect("claims")
    }

    #[test]
    fn scopes_from_scope_and_scp() {
        let c = claims(serde_json::json!({ "iss": "i", "scope": "read  write" }));
        assert_eq!(c.scopes(), ["read", "write"]);
        let c = claims(serde_json::json!({ "iss": "i", "scp": ["a", "b"] }));
        assert_eq!(c.scopes(), ["a", "b"]);
        let c = claims(serde_json::json!({ "iss": "i", "scp": "a b" }));
        assert_eq!(c.scopes(), ["a", "b"]);
    }
}

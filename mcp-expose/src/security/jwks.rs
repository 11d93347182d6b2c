//! A cached JSON Web Key Set, fetched from a URL (or found through the issuer's metadata).
//!
//! Fetched at start and kept for the response's `Cache-Control: max-age` (10 minutes without
//! one, clamped to 1 minute..1 day). A token signed with an unknown `kid` triggers one refetch,
//! at most once per 30 s, so a flood of made-up key ids cannot hammer the identity provider.
//! Concurrent requests share one fetch; after a failed fetch the old keys stay in use and the
//! next attempt waits 5 s.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
};

use crate::error::{Error, ErrorKind, Result};

const DEFAULT_TTL: Duration = Duration::from_secs(600);
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(86_400);
/// The least time between two refetches caused by an unknown `kid`.
const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(30);
/// The least time between a failed fetch and the next attempt.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// A fetch (discovery included) gives up after this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Larger key sets or metadata documents are refused.
const MAX_DOCUMENT: usize = 1 << 20;

/// A verification key: RS256 (RSA) or ES256 (P-256) only.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Where the key set lives.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// The JWKS URL itself.
    Url(String),
    /// An issuer whose metadata (RFC 8414, then OpenID discovery) names `jwks_uri`.
    Discover(String),
}

#[derive(Debug, Default)]
struct Cache {
    keys: Arc<[Key]>,
    /// Bumped on every fetch attempt, so requests that waited for one do not start another.
    attempts: u64,
    /// `None` until a fetch succeeded.
    fresh_until: Option<Instant>,
    unknown_kid_after: Option<Instant>,
    retry_after: Option<Instant>,
    /// The discovered JWKS URL.
    jwks_url: Option<String>,
}

/// One key set, shared by every request.
#[derive(Debug)]
pub(crate) struct KeySet {
    location: Location,
    client: reqwest::Client,
    cache: Mutex<Cache>,
    fetching: tokio::sync::Mutex<()>,
}

impl KeySet {
    pub(crate) fn new(location: Location, client: reqwest::Client) -> Self {
        Self {
            location,
            client,
            cache: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetches the keys now (at start); failures are logged and retried on demand.
    pub(crate) async fn prefetch(&self) {
        let seen = self.cache().attempts;
        self.refresh(seen, false).await;
    }

    /// The keys to try for a token with `kid`: refetched first when stale, or when `kid` is
    /// unknown and no such refetch happened in the last 30 s. `None` while no fetch succeeded.
    pub(crate) async fn keys(&self, kid: Option<&str>) -> Option<Arc<[Key]>> {
        let (seen, refetch, unknown) = {
            let cache = self.cache();
            let now = Instant::now();
            let fresh = cache.fresh_until.is_some_and(|t| now < t);
            let known =
                kid.is_none_or(|kid| cache.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
            let may_retry = cache.retry_after.is_none_or(|t| now >= t);
            let refetch = if !fresh {
                may_retry
            } else {
                !known && may_retry && cache.unknown_kid_after.is_none_or(|t| now >= t)
            };
            (cache.attempts, refetch, fresh && !known)
        };
        if refetch {
            self.refresh(seen, unknown).await;
        }
        let cache = self.cache();
        cache.fresh_until.is_some().then(|| cache.keys.clone())
    }

    /// One fetch for everyone waiting: whoever gets the lock after an attempt was made since
    /// `seen` uses its result.
    async fn refresh(&self, seen: u64, unknown_kid: bool) {
        let _fetching = self.fetching.lock().await;
        if self.cache().attempts != seen {
            return;
        }
        let result = tokio::time::timeout(FETCH_TIMEOUT, self.fetch())
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Internal,
                    format!("no answer within {} s", FETCH_TIMEOUT.as_secs()),
                ))
            });
        let now = Instant::now();
        let mut cache = self.cache();
        cache.attempts += 1;
        if unknown_kid {
            cache.unknown_kid_after = Some(now + UNKNOWN_KID_INTERVAL);
        }
        match result {
            Ok((keys, url, ttl)) => {
                tracing::debug!(%url, keys = keys.len(), ttl_s = ttl.as_secs(), "fetched JWKS");
                cache.keys = keys.into();
                cache.fresh_until = Some(now + ttl);
                cache.retry_after = None;
                cache.jwks_url = Some(url);
            }
            Err(e) => {
                tracing::warn!(
                    source = ?self.location,
                    error = %format_args!("{e:#}"),
                    stale_keys = cache.keys.len(),
                    "cannot fetch the JWKS; retrying on a later request"
                );
                cache.retry_after = Some(now + RETRY_INTERVAL);
            }
        }
    }

    async fn fetch(&self) -> Result<(Vec<Key>, String, Duration)> {
        let discovered = self.cache().jwks_url.clone();
        let url = match (&self.location, discovered) {
            (Location::Url(url), _) => url.clone(),
            (Location::Discover(_), Some(url)) => url,
            (Location::Discover(issuer), None) => discover(&self.client, issuer).await?,
        };
        let (body, ttl) = get(&self.client, &url).await?;
        let keys = parse(&body)?;
        Ok((keys, url, ttl))
    }
}

/// Plain `http` only on loopback (tests, a local identity provider); `https` elsewhere.
pub(crate) fn check_url(url: &str) -> Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::new(ErrorKind::Config, format!("`{url}` is not a URL: {e}")))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(Error::new(
            ErrorKind::Config,
            format!("`{url}` must be an https URL (plain http only on loopback)"),
        )),
    }
}

/// The issuer's `jwks_uri`, from RFC 8414 metadata or else OpenID Connect discovery.
async fn discover(client: &reqwest::Client, issuer: &str) -> Result<String> {
    let base = check_url(issuer)?;
    let path = base.path().trim_end_matches('/');
    let origin = base.origin().ascii_serialization();
    let candidates = [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ),
    ];
    let mut last = None;
    for candidate in candidates {
        match get(client, &candidate).await {
            Ok((body, _)) => {
                let metadata: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    Error::new(ErrorKind::Internal, format!("{candidate}: not JSON: {e}"))
                })?;
                if metadata["issuer"].as_str() != Some(issuer) {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!("{candidate} names another issuer: {}", metadata["issuer"]),
                    ));
                }
                let jwks = metadata["jwks_uri"].as_str().ok_or_else(|| {
                    Error::new(ErrorKind::Internal, format!("{candidate} has no jwks_uri"))
                })?;
                check_url(jwks)?;
                return Ok(jwks.to_owned());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::new(ErrorKind::Internal, "no metadata")))
}

/// The body (at most 1 MiB) and how long it may be cached.
async fn get(client: &reqwest::Client, url: &str) -> Result<(Vec<u8>, Duration)> {
    let failed =
        |e: reqwest::Error| Error::with_source(ErrorKind::Internal, format!("GET {url}"), e);
    let mut response = client.get(url).send().await.map_err(failed)?;
    if !response.status().is_success() {
        return Err(Error::new(
            ErrorKind::Internal,
            format!("GET {url}: HTTP {}", response.status()),
        ));
    }
    let ttl = max_age(response.headers()).unwrap_or(DEFAULT_TTL);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(Error::new(
                ErrorKind::Internal,
                format!("GET {url}: larger than {MAX_DOCUMENT} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, ttl))
}

/// `Cache-Control: max-age=N`, clamped.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).clamp(MIN_TTL, MAX_TTL))
}

/// The usable keys of a JWKS document; keys of other types, curves or uses are skipped (so
/// one odd key does not hide the others).
fn parse(body: &[u8]) -> Result<Vec<Key>> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("not a JWKS document: {e}")))?;
    Ok(document
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(|jwk| key(&jwk))
        .collect())
}

fn key(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    let declared = match jwk.common.key_algorithm {
        None => algorithm,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(_) => return None,
    };
    if declared != algorithm {
        return None;
    }
    Some(Key {
        kid: jwk.common.key_id.clone(),
        algorithm,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_rs256_and_es256_keys_only() {
        let body = serde_json::json!({ "keys": [
            { "kty": "RSA", "kid": "r", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB" },
            { "kty": "EC", "crv": "P-256", "kid": "e", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM" },
            { "kty": "oct", "kid": "h", "k": "c2VjcmV0" },
            { "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" },
            { "kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB" },
            { "kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
            "not a key"
        ]})
        .to_string();
        let keys = parse(body.as_bytes()).expect("parsed");
        let summary: Vec<_> = keys
            .iter()
            .map(|k| (k.kid.as_deref(), k.algorithm))
            .collect();
        assert_eq!(
            summary,
            [(Some("r"), Algorithm::RS256), (Some("e"), Algorithm::ES256)]
        );
        assert!(parse(b"{}").is_err());
    }

    #[test]
    fn max_age_is_clamped() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            "cache-control",
            "public, max-age=3600".parse().expect("value"),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(3600)));
        headers.insert("cache-control", "max-age=0".parse().expect("value"));
        assert_eq!(max_age(&headers), Some(MIN_TTL));
    }

    #[test]
    fn https_except_on_loopback() {
        assert!(check_url("https://idp.example.com/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://idp.example.com/jwks").is_err());
        assert!(check_url("ftp://idp.example.com").is_err());
        assert!(check_url("not a url").is_err());
    }
}

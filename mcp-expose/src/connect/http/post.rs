//! One request to the server: the session, version and 2026-07-28 headers, the OAuth token
//! (and a sign-in when the server asks for one), and retries while the server is unreachable
//! or asks to come back later.

use std::time::Duration;

use reqwest::{
    Method, RequestBuilder, Response, StatusCode,
    header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE},
};
use tokio::time::Instant;

use super::{Inner, PROTOCOL_VERSION, SESSION_ID};
use crate::{
    connect::retry::{self, GIVE_UP_AFTER, is_transient},
    error::describe,
};

impl Inner {
    /// A request to the server with the given session and version, and the current token
    /// (which is returned too: a 401 to it is answered by [`OAuth::answer`](crate::connect::oauth::OAuth::answer)).
    pub(super) async fn request(
        &self,
        method: Method,
        session: Option<&str>,
        version: Option<&str>,
    ) -> (RequestBuilder, Option<String>) {
        let mut request = self
            .client
            .request(method, self.url.clone())
            .headers(self.headers.clone());
        let authorization = match &self.auth {
            Some(auth) => auth.authorization().await,
            None => None,
        };
        if let Some(value) = &authorization {
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(session) = session {
            request = request.header(SESSION_ID, session);
        }
        if let Some(version) = version {
            request = request.header(PROTOCOL_VERSION, version);
        }
        (request, authorization)
    }

    /// POSTs `body` (with the current session when `with_session`, unless `body` is an MCP
    /// 2026-07-28 request, which carries its own version headers), retrying while the server
    /// is unreachable, or refuses it for now (429 or 503 with `Retry-After`: it did not take the
    /// message, so sending it again runs nothing twice). Returns the response and the session it
    /// was sent under.
    pub(super) async fn post(
        &self,
        body: &str,
        with_session: bool,
    ) -> Result<(Response, Option<String>), String> {
        // The tool annotations are read (under their lock) only for a 2026-07-28 request.
        let revision = if crate::connect::revision::is_versioned(body) {
            crate::connect::revision::headers(body, &self.tools())
        } else {
            Vec::new()
        };
        let with_session = with_session && revision.is_empty();
        let started = Instant::now();
        let deadline = started + GIVE_UP_AFTER;
        let mut backoff = retry::backoff();
        let mut attempts = 0u32;
        let mut sign_ins = 0u32;
        loop {
            // Read on every attempt: another task may have re-initialized meanwhile.
            let (session, version) = if with_session {
                self.session()
            } else {
                (None, None)
            };
            let (mut request, authorization) = self
                .request(Method::POST, session.as_deref(), version.as_deref())
                .await;
            for (name, value) in &revision {
                request = request.header(name.as_str(), value);
            }
            let sent = request
                .header(ACCEPT, "application/json, text/event-stream")
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_owned())
                .send()
                .await;
            match sent {
                Ok(response) => {
                    if let Some(auth) = &self.auth
                        && let Some(signed_in) = auth
                            .answer(
                                response.status(),
                                response.headers(),
                                authorization.as_deref(),
                                &mut sign_ins,
                            )
                            .await
                    {
                        signed_in.map_err(|e| e.sentence())?;
                        continue;
                    }
                    let wait = retry_after(&response)
                        .map(|wait| wait.max(backoff.next_delay()))
                        .filter(|wait| Instant::now() + *wait <= deadline);
                    let Some(wait) = wait else {
                        return Ok((response, session));
                    };
                    let status = response.status();
                    if attempts == 0 {
                        tracing::warn!(%status, ?wait, "the server asks to retry later; waiting");
                    } else {
                        tracing::debug!(%status, ?wait, attempts, "the server asks to retry later");
                    }
                    attempts += 1;
                    tokio::time::sleep(wait).await;
                }
                // Nothing reached the server, so sending again cannot run anything twice.
                Err(e) if e.is_connect() && (e.is_timeout() || is_transient(&e)) => {
                    let delay = backoff.next_delay();
                    if Instant::now() + delay > deadline {
                        return Err(format!(
                            "cannot reach {} (retried for {} s): {}",
                            self.url,
                            started.elapsed().as_secs(),
                            describe(&e)
                        ));
                    }
                    if attempts == 0 {
                        tracing::warn!(error = %describe(&e), "server unreachable; retrying");
                    } else {
                        tracing::debug!(error = %describe(&e), ?delay, attempts, "server unreachable");
                    }
                    attempts += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(format!("request to {} failed: {}", self.url, describe(&e))),
            }
        }
    }
}

/// How long a 429 or 503 asks to wait (`Retry-After` in seconds; an HTTP date is not honoured),
/// at most a little over [`GIVE_UP_AFTER`]: longer is as good as never, and a huge value would
/// overflow the deadline arithmetic.
fn retry_after(response: &Response) -> Option<Duration> {
    if !matches!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(
        seconds.min(GIVE_UP_AFTER.as_secs() + 1),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: &str) -> Response {
        let response = http::Response::builder()
            .status(status)
            .header("retry-after", retry_after)
            .body(Vec::<u8>::new())
            .expect("response");
        Response::from(response)
    }

    #[test]
    fn a_huge_retry_after_is_capped_not_an_overflow() {
        let wait = retry_after(&response(503, "18446744073709551615")).expect("a wait");
        // Before the cap, this addition panicked ("overflow when adding duration to instant").
        let _ = Instant::now() + wait;
        assert!(
            wait > GIVE_UP_AFTER,
            "longer than the connector waits: {wait:?}"
        );
        assert_eq!(
            retry_after(&response(429, " 2 ")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(retry_after(&response(500, "2")), None);
        assert_eq!(
            retry_after(&response(503, "Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }
}

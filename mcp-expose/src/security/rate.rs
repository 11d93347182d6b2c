//! Rate limiting per bearer token, or per client address without one (GCRA, `governor`).

use std::{net::SocketAddr, num::NonZeroU32, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::transport::policy::json_error;

/// A limiter allowing `per_second` requests per client, with bursts of as many.
#[derive(Clone)]
pub(crate) struct RateLimit(Arc<DefaultKeyedRateLimiter<String>>);

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimit")
    }
}

impl RateLimit {
    pub(crate) fn new(per_second: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let limiter = Arc::new(RateLimiter::keyed(Quota::per_second(rate)));
        // Forget clients idle long enough to be back at a full burst, so the map does not grow
        // with every token and address ever seen; ends with the limiter.
        let weak = Arc::downgrade(&limiter);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(limiter) = weak.upgrade() else {
                        return;
                    };
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            });
        }
        Some(Self(limiter))
    }
}

/// Middleware: 429 with `Retry-After` and a JSON body once a client exceeds its rate.
pub(crate) async fn limit(
    State(limit): State<RateLimit>,
    request: Request,
    next: Next,
) -> Response {
    // The token identifies a client better than its address (many clients share a proxy's).
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // A digest: the limiter's map does not keep tokens in memory.
        .map(|v| {
            let digest = super::auth::digest(v);
            format!(
                "token:{}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, digest)
            )
        })
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| format!("ip:{}", addr.ip()))
        })
        .unwrap_or_default();
    match limit.0.check_key(&key) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let seconds = wait.as_secs() + 1;
            tracing::debug!(retry_after = seconds, "rate limited a client");
            crate::observe::metrics::rejected("rate");
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests: rate limit exceeded",
            );
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

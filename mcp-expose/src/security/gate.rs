//! The checks in front of the MCP routes, as one tower layer: the host policy, shutting down,
//! the session cap. Each is a plain call on the request; a refused request gets its JSON error
//! at once, an admitted one goes to the route with no boxed future or service clone added (an
//! axum `from_fn` layer costs both on every request, and these run on every request).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{
    policy::{self, HostPolicy},
    sessions::{Reservation, SessionCap},
};
use crate::web::{Refusal, json_error};

/// Which checks a [`Gated`] service makes, in this order.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    policy: Option<Arc<HostPolicy>>,
    admission: Option<Admission>,
}

/// New requests are refused while shutting down, and new sessions beyond the cap.
#[derive(Clone)]
struct Admission {
    /// The server's shutdown flag.
    draining: Arc<AtomicBool>,
    cap: SessionCap,
}

impl Gate {
    /// Foreign `Host` / `Origin` -> 403.
    pub(crate) fn policy(mut self, policy: HostPolicy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Shutting down -> 503 with `Retry-After: 1`; one session over the cap -> 503 with
    /// `Retry-After: 5`.
    pub(crate) fn admission(mut self, draining: Arc<AtomicBool>, cap: SessionCap) -> Self {
        self.admission = Some(Admission { draining, cap });
        self
    }

    fn check(&self, request: &mut Request) -> Result<Option<Reservation>, Refusal> {
        if let Some(policy) = &self.policy {
            policy::screen(policy, request)?;
        }
        let Some(admission) = &self.admission else {
            return Ok(None);
        };
        if admission.draining.load(Ordering::Relaxed) {
            return Err(Refusal::ShuttingDown);
        }
        admission.cap.admit(request)
    }
}

impl<S> tower::Layer<S> for Gate {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Gated<S> {
        Gated {
            gate: self.clone(),
            inner,
        }
    }
}

/// A service behind a [`Gate`].
#[derive(Clone)]
pub(crate) struct Gated<S> {
    gate: Gate,
    inner: S,
}

impl<S> tower::Service<Request> for Gated<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GatedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.gate.check(&mut request) {
            Ok(reservation) => GatedFuture::Admitted {
                inner: self.inner.call(request),
                _reservation: reservation,
            },
            Err(refusal) => GatedFuture::Refused {
                refusal: Some(refusal),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's own future, holding the place of the session it opens (if any) until it
    /// ends; or the refusal.
    #[project = GatedProjection]
    pub(crate) enum GatedFuture<F> {
        Admitted { #[pin] inner: F, _reservation: Option<Reservation> },
        Refused { refusal: Option<Refusal> },
    }
}

impl<F> Future for GatedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GatedProjection::Admitted { inner, .. } => inner.poll(cx),
            GatedProjection::Refused { refusal } => Poll::Ready(Ok(match refusal.take() {
                Some(refusal) => refusal.into_response(),
                None => json_error(StatusCode::INTERNAL_SERVER_ERROR, "polled after the end"),
            })),
        }
    }
}

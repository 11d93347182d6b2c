//! A request body left unread when its response is ready (a 401 decided on the head, a 413
//! after the limit, any early refusal): read to its end if it is small and arrives soon, so the
//! connection takes the client's next request; otherwise the response says
//! `Connection: close`. Without this hyper closes such a connection right after the response,
//! and a client that sends its next request on it (the MCP SDKs' OAuth discovery does, after
//! the 401) gets "server disconnected without sending a response".

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Bytes,
    http::{HeaderValue, header},
    response::Response,
};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;

/// How much of a body left unread is read to keep its connection.
const DRAIN_LIMIT: usize = 64 * 1024;

/// How long the rest of a body left unread is waited for.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// A request body that, dropped before its end, hands what is left back to [`settle`].
pub(crate) struct Watched {
    body: Option<Incoming>,
    back: Option<oneshot::Sender<Incoming>>,
}

/// Where a body dropped before its end comes back; `None` for a request without one.
pub(crate) type Unread = Option<oneshot::Receiver<Incoming>>;

/// `body` watched, unless it is empty (a GET, an upgrade): those cost nothing.
pub(crate) fn watch(body: Incoming) -> (axum::body::Body, Unread) {
    if body.is_end_stream() {
        return (axum::body::Body::new(body), None);
    }
    let (back, unread) = oneshot::channel();
    let watched = Watched {
        body: Some(body),
        back: Some(back),
    };
    (axum::body::Body::new(watched), Some(unread))
}

impl Body for Watched {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let (Some(body), Some(back)) = (self.body.take(), self.back.take())
            && !body.is_end_stream()
        {
            let _ = back.send(body);
        }
    }
}

/// `response`, once what its request left unread is read (at most [`DRAIN_LIMIT`] bytes
/// within [`DRAIN_WAIT`]), or marked `Connection: close` when it cannot be.
pub(crate) async fn settle(unread: Unread, mut response: Response) -> Response {
    let Some(rest) = unread.and_then(|mut unread| unread.try_recv().ok()) else {
        return response;
    };
    use http_body_util::{BodyExt as _, Limited};
    let drained = tokio::time::timeout(DRAIN_WAIT, Limited::new(rest, DRAIN_LIMIT).collect())
        .await
        .is_ok_and(|read| read.is_ok());
    if !drained {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

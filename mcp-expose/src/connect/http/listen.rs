//! The GET stream: messages the server sends on its own (notifications, requests such as
//! sampling), kept open across reconnects and new sessions.

use std::sync::Arc;

use reqwest::{Method, StatusCode, header::ACCEPT};

use super::{Inner, LAST_EVENT_ID};
use crate::connect::{retry, stream::Messages};
use crate::error::describe;

impl Inner {
    /// Keeps a GET stream open for server-initiated messages while there is an initialized
    /// session, reconnecting with backoff; a 404 there re-initializes right away, so
    /// notifications flow again after a server restart even when the client is idle.
    pub(super) async fn listen(self: Arc<Self>) {
        let mut generation = self.generation.subscribe();
        let mut backoff = retry::backoff();
        // Not reset by new sessions, so a server that always forgets them is not hammered.
        let mut recoveries = retry::backoff();
        let mut last_event_id: Option<String> = None;
        let mut current = None;
        loop {
            let seen = *generation.borrow_and_update();
            let session = {
                let state = self.state();
                state.session.clone().filter(|_| state.initialized)
            };
            let Some(session) = session else {
                if generation.changed().await.is_err() {
                    return;
                }
                continue;
            };
            if current != Some(seen) {
                current = Some(seen);
                last_event_id = None;
                backoff.reset();
            }
            let version = self.session().1;
            let mut request = self
                .request(Method::GET, Some(&session), version.as_deref())
                .await
                .0
                .header(ACCEPT, "text/event-stream");
            if let Some(last) = &last_event_id {
                request = request.header(LAST_EVENT_ID, last);
            }
            let wait = match request.send().await {
                Err(e) => {
                    tracing::debug!(error = %describe(&e), "event stream: server unreachable");
                    backoff.next_delay()
                }
                Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
                    tracing::debug!("the server offers no stream for server-initiated messages");
                    if generation.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(response) if response.status() == StatusCode::NOT_FOUND => {
                    if let Err(reason) = self.recover(Some(&session)).await {
                        tracing::warn!(%reason, "the server lost the session; re-initializing failed");
                    }
                    let _ = generation.borrow_and_update();
                    recoveries.next_delay()
                }
                Ok(response) if response.status().is_success() => {
                    recoveries.reset();
                    let mut stream = Messages::new(response);
                    loop {
                        tokio::select! {
                            next = stream.next() => match next {
                                Ok(Some(text)) => self.forward(&text).await,
                                Ok(None) => {
                                    tracing::info!("the server closed the event stream; reopening");
                                    break;
                                }
                                Err(reason) => {
                                    tracing::info!(%reason, "the event stream broke; reopening");
                                    break;
                                }
                            },
                            changed = generation.changed() => {
                                if changed.is_err() {
                                    return;
                                }
                                break;
                            }
                        }
                    }
                    last_event_id = stream.last_event_id().or(last_event_id);
                    stream.retry().unwrap_or_else(|| backoff.next_delay())
                }
                Ok(response) => {
                    tracing::warn!(status = %response.status(), "the server refused the event stream");
                    backoff.next_delay()
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = generation.changed() => if changed.is_err() { return },
            }
        }
    }
}

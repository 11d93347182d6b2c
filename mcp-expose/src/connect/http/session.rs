//! The session of MCP 2025 revisions: a broken response stream resumed with
//! `Last-Event-ID`, and a session the server lost (404) replaced by replaying the client's
//! `initialize` under an internal id.

use std::sync::atomic::Ordering;

use reqwest::{Method, Response, header::ACCEPT};

use super::{Inner, LAST_EVENT_ID, SESSION_ID, error_detail, header};
use crate::connect::{
    message::{self, Id, from_server},
    stream::{Messages, bounded_text},
};

impl Inner {
    /// GET with `Last-Event-ID`: the rest of a broken stream, if the server kept it. Not
    /// after the session was replaced: the stream belonged to a server that is gone.
    pub(super) async fn resume(
        &self,
        last_event_id: &str,
        session: Option<&str>,
    ) -> Option<Response> {
        let (current, version) = self.session();
        if current.as_deref() != session {
            return None;
        }
        let response = self
            .request(Method::GET, session, version.as_deref())
            .await
            .0
            .header(ACCEPT, "text/event-stream")
            .header(LAST_EVENT_ID, last_event_id)
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(response)
    }

    /// Replaces a session the server no longer knows (it restarted, or expired it): the
    /// client's own `initialize` again under an internal id, its answer swallowed, then
    /// `notifications/initialized`. The client sees nothing but its retried message.
    pub(super) async fn recover(&self, stale: Option<&str>) -> Result<(), String> {
        let _one = self.recovering.lock().await;
        let params = {
            let state = self.state();
            if state.session.as_deref() != stale {
                return Ok(());
            }
            state.init_params.clone()
        };
        let params = params.ok_or("the session was lost before the client initialized it")?;
        let id = Id::internal(self.internal_ids.fetch_add(1, Ordering::Relaxed));
        let (response, _) = self
            .post(&message::initialize_request(&id, &params), false)
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = bounded_text(response).await;
            return Err(format!(
                "initialize: HTTP {status}: {}",
                error_detail(&body)
            ));
        }
        let session = header(&response, SESSION_ID);
        let mut stream = Messages::new(response);
        let version = loop {
            let text = stream
                .next()
                .await?
                .ok_or("the server closed the stream before answering initialize")?;
            let Some(reply) = from_server(&text) else {
                continue;
            };
            if reply.answers(&id) {
                break message::initialize_outcome(&reply.line)?;
            }
            // Anything else the new session sends already is for the client.
            self.out.send(reply.line).await;
        };
        let initialized = {
            let mut state = self.state();
            state.session = session.clone();
            state.version = Some(version);
            state.initialized
        };
        if initialized {
            let (response, _) = self.post(message::INITIALIZED, true).await?;
            if !response.status().is_success() {
                return Err(format!(
                    "notifications/initialized: HTTP {}",
                    response.status()
                ));
            }
        }
        self.generation.send_modify(|g| *g += 1);
        tracing::info!(
            session = session.as_deref().unwrap_or("none"),
            "the server lost the session; re-initialized"
        );
        Ok(())
    }
}

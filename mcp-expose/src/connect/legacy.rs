//! The HTTP+SSE transport of MCP 2024-11-05, for servers that predate streamable HTTP: a GET
//! event stream that first names an endpoint (`event: endpoint`), then carries every server
//! message; the client POSTs its messages to that endpoint. The connector falls back to it
//! when the server refuses streamable HTTP (404 or 405 to the POST), as `mcp-remote` does.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::{
    Url,
    header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap},
};
use tokio::task::JoinHandle;

use super::{
    message::{Id, Kind, Message, from_server},
    oauth::OAuth,
    output::Output,
    retry::CONNECT_TIMEOUT,
    stream::Messages,
};
use crate::{
    error::describe,
    jsonrpc::{IdKey, SERVER_UNAVAILABLE},
};

/// How long the server has to name its endpoint.
const ENDPOINT_WAIT: Duration = Duration::from_secs(10);

/// A connection to a legacy HTTP+SSE server.
#[derive(Debug)]
pub(crate) struct LegacyRemote {
    client: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
    out: Output,
    /// The sign-in, whose current token goes with every POST.
    auth: Option<Arc<OAuth>>,
    /// Requests sent and not answered yet: when the stream ends, each gets an error; `None`
    /// once it ended (nothing could answer a request sent then).
    pending: Arc<Mutex<Option<HashMap<IdKey, Id>>>>,
    reader: JoinHandle<()>,
}

impl LegacyRemote {
    /// Opens the event stream at `url` and waits (bounded) for the server's endpoint.
    pub(crate) async fn connect(
        url: &Url,
        client: reqwest::Client,
        headers: HeaderMap,
        auth: Option<Arc<OAuth>>,
        out: Output,
    ) -> Result<Self, String> {
        let mut get = client
            .get(url.clone())
            .headers(headers.clone())
            .header(ACCEPT, "text/event-stream");
        if let Some(value) = authorization(auth.as_deref()).await {
            get = get.header(AUTHORIZATION, value);
        }
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, get.send())
            .await
            .map_err(|_| format!("{url} did not answer the event-stream GET in time"))?
            .map_err(|e| format!("cannot open the event stream at {url}: {}", describe(&e)))?;
        if !opened.status().is_success() {
            return Err(format!(
                "{url} refused both streamable HTTP and an HTTP+SSE event stream (GET: HTTP {})",
                opened.status()
            ));
        }
        let mut stream = Messages::new(opened);
        let endpoint = tokio::time::timeout(ENDPOINT_WAIT, stream.endpoint())
            .await
            .map_err(|_| {
                format!(
                    "{url} opened an event stream but named no endpoint within {} s",
                    ENDPOINT_WAIT.as_secs()
                )
            })??;
        let endpoint = url
            .join(&endpoint)
            .map_err(|e| format!("the server's endpoint {endpoint:?} is not a URL: {e}"))?;
        if endpoint.origin() != url.origin() {
            return Err(format!(
                "the server names an endpoint on another origin ({endpoint}); refusing to send it messages"
            ));
        }
        tracing::info!(%endpoint, "the server speaks HTTP+SSE (MCP 2024-11-05); using it");
        let pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let reader = tokio::spawn(read(stream, out.clone(), pending.clone()));
        Ok(Self {
            client,
            endpoint,
            headers,
            out,
            auth,
            pending,
            reader,
        })
    }

    /// POSTs one client message to the endpoint; its answer comes on the event stream.
    pub(crate) async fn send(&mut self, message: Message) {
        if let Kind::Request { id, .. } = &message.kind {
            let open = lock(&self.pending)
                .as_mut()
                .map(|pending| pending.insert(id.key().clone(), id.clone()))
                .is_some();
            if !open {
                let reply = message.failure(
                    SERVER_UNAVAILABLE,
                    "the server closed its HTTP+SSE event stream, which cannot be resumed; restart the client to reconnect",
                );
                if let Some(reply) = reply {
                    self.out.send(reply).await;
                }
                return;
            }
        }
        let mut post = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(message.line.clone());
        if let Some(value) = authorization(self.auth.as_deref()).await {
            post = post.header(AUTHORIZATION, value);
        }
        let sent = post.send().await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => format!("HTTP {} from {}", response.status(), self.endpoint),
            Err(e) => format!("cannot reach {}: {}", self.endpoint, describe(&e)),
        };
        if let Some(id) = message.id().filter(|_| message.is_request())
            && let Some(pending) = lock(&self.pending).as_mut()
        {
            pending.remove(id.key());
        }
        match message.failure(SERVER_UNAVAILABLE, &failure) {
            Some(reply) => {
                self.out.send(reply).await;
            }
            None => tracing::warn!(reason = %failure, "message not delivered"),
        }
    }

    pub(crate) async fn close(self) {
        self.reader.abort();
    }
}

/// The current token (refreshed when about to expire); a 401 here is the client's error, as
/// HTTP+SSE has no way to send the message again after a sign-in.
async fn authorization(auth: Option<&OAuth>) -> Option<String> {
    auth?.authorization().await
}

/// Forwards the event stream's messages; when it ends, fails the requests still waiting.
async fn read(mut stream: Messages, out: Output, pending: Arc<Mutex<Option<HashMap<IdKey, Id>>>>) {
    let reason = loop {
        match stream.next().await {
            Ok(Some(text)) => {
                let Some(message) = from_server(&text) else {
                    continue;
                };
                if let Kind::Response { id: Some(id) } = &message.kind
                    && let Some(pending) = lock(&pending).as_mut()
                {
                    pending.remove(id.key());
                }
                out.send(message.line).await;
            }
            Ok(None) => break "the server closed the event stream".to_owned(),
            Err(e) => break format!("the event stream broke: {e}"),
        }
    };
    tracing::warn!(%reason, "HTTP+SSE has no way to resume; restart the client to reconnect");
    let waiting: Vec<Id> = lock(&pending)
        .take()
        .map(|pending| pending.into_values().collect())
        .unwrap_or_default();
    for id in waiting {
        let reply = super::message::error_reply(Some(&id), SERVER_UNAVAILABLE, &reason);
        out.send(reply).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

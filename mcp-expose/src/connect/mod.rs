//! `mcp-expose connect URL`: a stdio MCP server on one side (for Claude Desktop and other
//! stdio-only clients) forwarding to a remote server over streamable HTTP or WebSocket.
//!
//! Messages are forwarded as they are: only the JSON-RPC envelope (`id`, `method`) is read,
//! never re-serialized. The connector rides out server restarts: an unreachable server is
//! retried with backoff (up to 30 s per request, then a JSON-RPC error), a lost HTTP session
//! (404) or a dropped WebSocket is re-established by replaying the client's `initialize`.
//!
//! ```text
//! mcp-expose connect https://mcp.example.com/mcp --header-env Authorization=MCP_AUTH
//! mcp-expose connect ws://127.0.0.1:8000/ws --header 'X-Team: genomics'
//! ```

mod headers;
mod http;
mod message;
mod output;
mod retry;
mod revision;
mod sse;
mod stream;
mod ws;

use reqwest::Url;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use self::{http::HttpRemote, message::Message, output::Output, ws::WsRemote};
use crate::error::{Error, ErrorKind, Result};

/// `connect` options.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The remote server: `http(s)://host/mcp` (streamable HTTP) or `ws(s)://host/ws` (WebSocket).
    pub url: String,

    /// An extra header on every request and on the WebSocket upgrade, as 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// A header whose value comes from an environment variable, as Name=ENVVAR (repeatable):
    /// for secrets, and for clients that split arguments at spaces.
    #[arg(long = "header-env", value_name = "NAME=ENVVAR")]
    pub header_envs: Vec<String>,
}

impl ConnectOptions {
    /// Options for connecting to `url`, without extra headers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
            header_envs: Vec::new(),
        }
    }

    /// Adds a header, as `"Name: value"`.
    pub fn with_header(mut self, header: impl Into<String>) -> Self {
        self.headers.push(header.into());
        self
    }

    /// Adds a header whose value is read from an environment variable, as `"Name=ENVVAR"`.
    pub fn with_header_env(mut self, spec: impl Into<String>) -> Self {
        self.header_envs.push(spec.into());
        self
    }
}

/// The remote side, chosen by the URL's scheme.
enum Remote {
    Http(HttpRemote),
    Ws(WsRemote),
}

impl Remote {
    async fn send(&mut self, message: Message) {
        match self {
            Remote::Http(http) => http.send(message).await,
            Remote::Ws(ws) => ws.send(message).await,
        }
    }

    async fn close(self) {
        match self {
            Remote::Http(http) => http.close().await,
            Remote::Ws(ws) => ws.close().await,
        }
    }
}

/// Runs the connector until stdin closes.
///
/// Fails at start on an invalid URL or header, or a `--header-env` variable that is not set;
/// once running, problems with the server become JSON-RPC error replies and stderr logs.
pub async fn run(options: ConnectOptions) -> Result<()> {
    init_tracing();
    let url = Url::parse(&options.url).map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            format!("invalid URL {:?}", options.url),
            e,
        )
    })?;
    let headers = headers::parse(&options.headers, &options.header_envs, |var| {
        std::env::var(var).ok()
    })?;
    let (out, writer) = Output::spawn(tokio::io::stdout());
    let mut remote = match url.scheme() {
        "http" | "https" => Remote::Http(HttpRemote::new(url.clone(), headers, out.clone())?),
        "ws" | "wss" => Remote::Ws(WsRemote::spawn(url.clone(), headers, out.clone())),
        other => {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "unsupported URL scheme {other:?}: use http(s):// for streamable HTTP or ws(s):// for WebSocket"
                ),
            ));
        }
    };
    tracing::info!(%url, "connecting stdio to the server");
    let result = pump(&mut remote, &out).await;
    remote.close().await;
    // Every reply queued so far reaches stdout before the process exits.
    drop(out);
    let _ = writer.await;
    result
}

/// Reads newline-delimited messages from stdin and hands them to `remote` in order.
async fn pump(remote: &mut Remote, out: &Output) -> Result<()> {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = stdin
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot read stdin", e))?;
        if read == 0 || out.is_closed() {
            return Ok(());
        }
        let parsed = match std::str::from_utf8(&line) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => Message::parse(text),
            Err(_) => Err(message::error_reply(
                None,
                crate::jsonrpc::PARSE_ERROR,
                "Parse error: the line is not UTF-8",
            )),
        };
        match parsed {
            Ok(message) => remote.send(message).await,
            Err(reply) => {
                out.send(reply).await;
            }
        }
    }
}

/// Logs go to stderr: stdout belongs to the client's JSON-RPC stream.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

//! `mcp-expose connect URL`: a stdio MCP server on one side (for Claude Desktop and other
//! stdio-only clients) forwarding to a remote server over streamable HTTP, HTTP+SSE or
//! WebSocket.
//!
//! Messages of the client's own revision are forwarded as they are: only the JSON-RPC
//! envelope (`id`, `method`) is read, never re-serialized. Over HTTP the connector speaks MCP
//! 2026-07-28 when the server does (`http::stateless`: the client's `initialize` answered from
//! `server/discover`, `_meta` added, input-required results turned into requests to the
//! client), falls back to HTTP+SSE for servers of 2024-11-05 (`legacy`), and signs in with
//! OAuth 2.1 when the server answers 401 (`oauth`). It rides out server restarts: an
//! unreachable server is retried with backoff (up to 30 s per request, then a JSON-RPC
//! error), a lost HTTP session (404) or a dropped WebSocket is re-established by replaying
//! the client's `initialize`.
//!
//! ```text
//! mcp-expose connect https://mcp.example.com/mcp        # signs in through the browser if asked
//! mcp-expose connect https://mcp.example.com/mcp --header-env Authorization=MCP_AUTH
//! mcp-expose connect ws://127.0.0.1:8000/ws --header 'X-Team: genomics'
//! ```

mod headers;
mod http;
mod legacy;
mod message;
mod oauth;
mod output;
mod retry;
mod revision;
mod sse;
mod stream;
mod ws;

use reqwest::Url;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use self::{
    http::HttpRemote, legacy::LegacyRemote, message::Message, output::Output, ws::WsRemote,
};
use crate::error::{Error, ErrorKind, Result};

/// `connect` options.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The remote server: `http(s)://host/mcp` (streamable HTTP; an older server's HTTP+SSE
    /// `http(s)://host/sse` works too) or `ws(s)://host/ws` (WebSocket).
    pub url: String,

    /// An extra header on every request and on the WebSocket upgrade, as 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// A header whose value comes from an environment variable, as Name=ENVVAR (repeatable):
    /// for secrets, and for clients that split arguments at spaces.
    #[arg(long = "header-env", value_name = "NAME=ENVVAR")]
    pub header_envs: Vec<String>,

    /// The MCP revision to speak over HTTP: by default the newest the server answers
    /// (2026-07-28, sessionless, translated for clients of older revisions), else the
    /// client's own; `2025-11-25` keeps the client's session revision; `2026-07-28` requires
    /// the newest.
    #[arg(long, value_enum, default_value_t = Revision::Auto, value_name = "REVISION")]
    pub protocol: Revision,

    /// Sign-in (OAuth 2.1), which starts by itself when the server answers 401: the browser
    /// opens on the authorization server, the redirect comes back to a loopback port, and the
    /// tokens are kept (mode 0600) in your config directory for the next run.
    #[command(flatten)]
    pub oauth: OAuthOptions,
}

/// Which MCP revision `connect` speaks to an HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[non_exhaustive]
pub enum Revision {
    /// MCP 2026-07-28 when the server answers `server/discover`, else the client's revision.
    #[default]
    Auto,
    /// The client's own revision (2025-11-25 and earlier: `initialize` and a session).
    #[value(name = "2025-11-25", alias = "2025")]
    Sessions,
    /// MCP 2026-07-28 only: fails when the server does not speak it.
    #[value(name = "2026-07-28", alias = "2026")]
    Latest,
}

/// How `connect` signs in to servers that require OAuth.
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
#[command(next_help_heading = "Sign-in (OAuth)")]
pub struct OAuthOptions {
    /// Never sign in: a 401 from the server becomes an error for the client (also the case
    /// when a --header sets Authorization).
    #[arg(long)]
    pub no_oauth: bool,

    /// A client registered with the authorization server beforehand (default: register one
    /// dynamically, or use --oauth-client-metadata-url where the server accepts it).
    #[arg(long, value_name = "ID")]
    pub oauth_client_id: Option<String>,

    /// The environment variable that holds the --oauth-client-id client's secret.
    #[arg(long, value_name = "ENVVAR", requires = "oauth_client_id")]
    pub oauth_client_secret_env: Option<String>,

    /// Sign in as the --oauth-client-id client itself (the client credentials grant), for
    /// jobs without a user: no browser.
    #[arg(long, requires = "oauth_client_id")]
    pub oauth_client_credentials: bool,

    /// Sign in on another device (RFC 8628 device authorization): a URL and a code are
    /// printed on stderr to enter on a phone or laptop, for machines without a browser (SSH,
    /// containers).
    #[arg(long, conflicts_with = "oauth_client_credentials")]
    pub oauth_device_code: bool,

    /// The PEM file of the --oauth-client-id client's private key (EC or RSA), which signs its
    /// assertions at the token endpoint (`private_key_jwt`) instead of a secret.
    #[arg(long, value_name = "PATH", requires = "oauth_client_id")]
    pub oauth_client_key_file: Option<std::path::PathBuf>,

    /// The HTTPS URL of this client's metadata document, used as its client ID by
    /// authorization servers that support client ID metadata documents.
    #[arg(long, value_name = "URL")]
    pub oauth_client_metadata_url: Option<String>,

    /// The command that opens the sign-in URL, which is appended to it (default: the
    /// desktop's browser; the URL is printed on stderr as well).
    #[arg(long, value_name = "CMD")]
    pub oauth_browser: Option<String>,

    /// The loopback port the sign-in redirect comes back to (default: any free port; a client
    /// registered beforehand may need the one its redirect URI names).
    #[arg(long, value_name = "PORT")]
    pub oauth_redirect_port: Option<u16>,

    /// The scopes to ask for, space-separated (default: what the server asks for).
    #[arg(long, value_name = "SCOPES")]
    pub oauth_scope: Option<String>,

    /// Sign out: forget the tokens saved for the server URL, then exit.
    #[arg(long)]
    pub logout: bool,
}

impl ConnectOptions {
    /// Options for connecting to `url`, without extra headers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
            header_envs: Vec::new(),
            protocol: Revision::Auto,
            oauth: OAuthOptions::default(),
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

/// The remote side, chosen by the URL's scheme (and, over HTTP, by what the server answers).
enum Remote {
    Http(HttpRemote),
    /// HTTP+SSE (MCP 2024-11-05), when the server refused streamable HTTP.
    Legacy(LegacyRemote),
    Ws(WsRemote),
}

impl Remote {
    async fn send(&mut self, message: Message, out: &Output) {
        let (initialize, answer) = match self {
            Remote::Http(http) => match http.send(message).await {
                Some(refused) => refused,
                None => return,
            },
            Remote::Legacy(legacy) => return legacy.send(message).await,
            Remote::Ws(ws) => return ws.send(message).await,
        };
        let Remote::Http(http) = self else {
            return;
        };
        match http.legacy().await {
            Ok(mut legacy) => {
                legacy.send(initialize).await;
                if let Remote::Http(http) = std::mem::replace(self, Remote::Legacy(legacy)) {
                    http.close().await;
                }
            }
            Err(reason) => {
                tracing::warn!(%reason, "no streamable HTTP and no HTTP+SSE either");
                if let Some(answer) = answer {
                    out.send(answer).await;
                }
            }
        }
    }

    async fn close(self) {
        match self {
            Remote::Http(http) => http.close().await,
            Remote::Legacy(legacy) => legacy.close().await,
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
    if options.oauth.logout {
        return oauth::logout(&url);
    }
    let headers = headers::parse(&options.headers, &options.header_envs, |var| {
        std::env::var(var).ok()
    })?;
    // stdin and stdout on the IO reactor (non-blocking pipes where they are pipes), not tokio's
    // blocking thread pool: no thread hand-off per message.
    let (stdin, stdout) = rmcp::transport::io::stdio_pipes();
    let (out, writer) = Output::spawn(stdout);
    let mut remote = match url.scheme() {
        "http" | "https" => {
            let auth = sign_in(&url, &headers, &options.oauth)?;
            let client = reqwest::Client::builder()
                .connect_timeout(retry::CONNECT_TIMEOUT)
                .user_agent(concat!("mcp-expose-connect/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| {
                    Error::with_source(ErrorKind::Config, "cannot create the HTTP client", e)
                })?;
            Remote::Http(HttpRemote::new(
                url.clone(),
                headers,
                options.protocol,
                auth,
                client,
                out.clone(),
            ))
        }
        "ws" | "wss" => {
            let auth = sign_in(&url, &headers, &options.oauth)?;
            Remote::Ws(WsRemote::spawn(url.clone(), headers, auth, out.clone()))
        }
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
    let result = pump(stdin, &mut remote, &out).await;
    remote.close().await;
    // Every reply queued so far reaches stdout before the process exits.
    drop(out);
    let _ = writer.await;
    result
}

/// The OAuth sign-in for `url`, unless turned off or the user sends their own credentials.
fn sign_in(
    url: &Url,
    headers: &reqwest::header::HeaderMap,
    options: &OAuthOptions,
) -> Result<Option<std::sync::Arc<oauth::OAuth>>> {
    if options.no_oauth || headers.contains_key(reqwest::header::AUTHORIZATION) {
        return Ok(None);
    }
    let client_secret = match &options.oauth_client_secret_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!("--oauth-client-secret-env names {var}, which is not set"),
            )
        })?),
        None => None,
    };
    if let Some(url) = &options.oauth_client_metadata_url {
        let valid = Url::parse(url).is_ok_and(|u| u.scheme() == "https" && u.path() != "/");
        if !valid {
            return Err(Error::new(
                ErrorKind::Config,
                format!("--oauth-client-metadata-url {url:?} must be an https:// URL with a path"),
            ));
        }
    }
    let settings = oauth::Settings {
        client_id: options.oauth_client_id.clone(),
        client_secret,
        client_key: options.oauth_client_key_file.clone(),
        client_credentials: options.oauth_client_credentials,
        device_code: options.oauth_device_code,
        client_metadata_url: options.oauth_client_metadata_url.clone(),
        browser: options.oauth_browser.clone(),
        redirect_port: options.oauth_redirect_port.unwrap_or(0),
        scope: options.oauth_scope.clone(),
    };
    match oauth::OAuth::new(url.clone(), settings) {
        Ok(auth) => Ok(Some(std::sync::Arc::new(auth))),
        Err(e) => {
            tracing::warn!(reason = %e.sentence(), "signing in with OAuth is not possible here");
            Ok(None)
        }
    }
}

/// Reads newline-delimited messages from stdin and hands them to `remote` in order.
async fn pump(
    stdin: impl tokio::io::AsyncRead + Unpin,
    remote: &mut Remote,
    out: &Output,
) -> Result<()> {
    let mut stdin = BufReader::new(stdin);
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
            Ok(message) => remote.send(message, out).await,
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

//! Errors: [`Error`] for the library's own failures, [`ToolError`] for tool authors.

use std::fmt;

/// What went wrong, for callers that need to branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A listener could not be bound (address in use, permission denied).
    Bind,
    /// Reading or writing a transport failed.
    Io,
    /// The command line or builder configuration is invalid.
    Config,
    /// The MCP session could not be established or broke down.
    Protocol,
    /// A request to the client (sampling, elicitation) failed, or cannot be made here.
    Peer,
    /// The client did not declare the capability a request to it needs (`sampling`,
    /// `elicitation`), so it was not asked.
    MissingCapability,
    /// A request to the client is waiting for its answer (MCP 2026-07-28): the call is
    /// answered with an input-required result, and the tool runs again with the answer.
    InputRequired,
    /// The tunnel could not run (with `--tunnel-required`).
    Tunnel,
    /// Signing in to a remote server (OAuth) failed or was refused.
    Auth,
    /// Something else inside mcp-expose failed.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Bind => "cannot bind listener",
            ErrorKind::Io => "i/o error",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Peer => "request to the client failed",
            ErrorKind::MissingCapability => "the client lacks a capability",
            ErrorKind::InputRequired => "waiting for the client's input",
            ErrorKind::Tunnel => "tunnel failed",
            ErrorKind::Auth => "sign-in failed",
            ErrorKind::Internal => "internal error",
        })
    }
}

/// The error type of mcp-expose: a [`kind`](Error::kind), a message, the underlying cause
/// ([`source`](std::error::Error::source)), and what to do about it.
///
/// `{}` prints the message alone, so that a reporter walking the chain of sources shows each
/// cause once. `{:#}` and `{:?}` print the whole plain sentence (the message, each cause once,
/// and what to do), so that `main` returning [`Result`] shows a person a readable line rather
/// than a struct; `{:#?}` shows the fields.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> mcp_expose::Result<()> {
///     // Port taken:  Error: cannot listen on 127.0.0.1:8000: Address already in use (os
///     // error 98); another program is using this port: stop it, or choose another port
///     mcp_expose::Server::new("demo", "1.0").http(8000).serve_with_signals().await
/// }
/// ```
///
/// Branch on [`kind`](Error::kind):
///
/// ```
/// # async fn demo() {
/// let first = mcp_expose::Server::new("a", "1").http(0).start().await.unwrap();
/// let port = first.http_addr().unwrap().port();
/// let second = mcp_expose::Server::new("b", "1").http(port).start().await;
/// assert_eq!(second.unwrap_err().kind(), mcp_expose::ErrorKind::Bind);
/// # }
/// ```
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    hint: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            hint: None,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
            hint: None,
        }
    }

    /// Adds what the person reading the error should do about it.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A listener that could not be bound, with what to do for the common causes.
    pub(crate) fn bind(what: impl fmt::Display, source: std::io::Error) -> Self {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                Some("another program is using this port: stop it, or choose another port")
            }
            std::io::ErrorKind::PermissionDenied => {
                Some("ports below 1024 need privileges: choose a port of 1024 or more")
            }
            std::io::ErrorKind::AddrNotAvailable => {
                Some("this machine has no such address: check --bind")
            }
            _ => None,
        };
        let error = Self::with_source(ErrorKind::Bind, format!("cannot listen on {what}"), source);
        match hint {
            Some(hint) => error.hint(hint),
            None => error,
        }
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The sentence a person reads: the message, each cause once, and what to do.
    pub(crate) fn sentence(&self) -> String {
        let mut sentence = describe(self);
        if let Some(hint) = &self.hint {
            sentence.push_str("; ");
            sentence.push_str(hint);
        }
        sentence
    }
}

/// `error` and its causes on one line, each said once: a wrapper whose own message already
/// holds its cause's (reqwest's, tungstenite's) does not repeat it, and one that says only
/// "error sending request" is followed by what went wrong.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The sentence a person reads (`main` returning `Err` prints `Error: {:?}`); `{:#?}` shows
/// the fields.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.debug_struct("Error")
                .field("kind", &self.kind)
                .field("message", &self.message)
                .field("source", &self.source)
                .field("hint", &self.hint)
                .finish()
        } else {
            f.write_str(&self.sentence())
        }
    }
}

/// `{}`: the message; `{:#}`: the sentence, causes and hint included (as anyhow's `{:#}`).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str(&self.sentence())
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error a tool returns to its caller: it becomes an `isError: true` result whose text is
/// the message, so the model can read it and correct itself.
///
/// Any `E: Display` works as a tool's error type; `ToolError` is a convenient default.
///
/// ```
/// use mcp_expose::ToolError;
/// fn check(n: i64) -> Result<i64, ToolError> {
///     if n < 0 { return Err(ToolError::new(format!("{n} is negative"))); }
///     Ok(n)
/// }
/// assert_eq!(check(-1).unwrap_err().to_string(), "-1 is negative");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    message: String,
}

impl ToolError {
    /// A tool error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message the caller sees.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolError {}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for ToolError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<Error> for ToolError {
    fn from(error: Error) -> Self {
        Self::new(format!("{error:#}"))
    }
}

impl From<serde_json::Error> for ToolError {
    fn from(error: serde_json::Error) -> Self {
        Self::new(error.to_string())
    }
}

impl From<std::io::Error> for ToolError {
    fn from(error: std::io::Error) -> Self {
        Self::new(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message_the_sentence_says_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let cause = io.to_string();
        let error = Error::bind("127.0.0.1:8000", io);
        assert_eq!(error.to_string(), "cannot listen on 127.0.0.1:8000");
        let sentence = format!(
            "cannot listen on 127.0.0.1:8000: {cause}; another program is using this port: \
             stop it, or choose another port"
        );
        assert_eq!(format!("{error:#}"), sentence);
        assert_eq!(format!("{error:?}"), sentence);
        assert_eq!(ToolError::from(error).message(), sentence);
        // A reporter walking the chain says the cause once.
        let outer = Error::with_source(
            ErrorKind::Io,
            "serving failed",
            Error::bind("x", cause_of()),
        );
        let chain = describe(&outer);
        assert_eq!(chain.matches("denied").count(), 1, "{chain}");
        assert!(format!("{outer:#?}").contains("kind: Io"));
    }

    fn cause_of() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied")
    }
}

//! `mcp-expose connect URL`: a stdio MCP server on one side (for Claude Desktop and other
//! stdio-only clients) forwarding to a remote server over streamable HTTP or WebSocket.

use crate::error::Result;

/// `connect` options.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The remote server: `http(s)://host/mcp` (streamable HTTP) or `ws(s)://host/ws` (WebSocket).
    pub url: String,
}

/// Runs the connector until stdin closes.
pub async fn run(options: ConnectOptions) -> Result<()> {
    let _ = options;
    Ok(())
}

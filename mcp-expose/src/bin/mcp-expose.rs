//! `mcp-expose`: put stdio MCP servers on the network (`bridge`, `gateway`) and connect
//! stdio-only clients to remote servers (`connect`).

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mcp-expose",
    version,
    about = "Expose MCP servers over HTTP, WebSocket and tunnels; connect stdio clients to remote servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a stdio MCP server over streamable HTTP and WebSocket: `bridge --http 8000 -- CMD ARGS...`.
    Bridge(Box<mcp_expose::bridge::BridgeOptions>),
    /// Several stdio servers behind one port, under path prefixes: `gateway servers.toml --http 8000`.
    Gateway(Box<mcp_expose::bridge::GatewayOptions>),
    /// Connect a stdio client (Claude Desktop, ...) to a remote server over streamable HTTP or WebSocket.
    Connect(mcp_expose::connect::ConnectOptions),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Connect(options) => mcp_expose::connect::run(options).await,
        Command::Bridge(options) => mcp_expose::bridge::run(*options).await,
        Command::Gateway(options) => mcp_expose::bridge::run_gateway(*options).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-expose: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

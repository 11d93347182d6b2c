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
    /// Worker threads. One answers soonest (a message never changes threads on its way) and
    /// forwards tens of thousands of messages a second; raise it for many busy sessions.
    #[arg(
        long,
        global = true,
        default_value_t = 1,
        value_name = "N",
        env = "MCP_EXPOSE_THREADS",
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    threads: u16,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a stdio MCP server over streamable HTTP and WebSocket: `bridge --http 8000 -- CMD ARGS...`.
    Bridge(Box<mcp_expose::cli::bridge::BridgeOptions>),
    /// Several stdio servers behind one port, under path prefixes: `gateway servers.toml --http 8000`.
    Gateway(Box<mcp_expose::cli::gateway::GatewayOptions>),
    /// Connect a stdio client (Claude Desktop, ...) to a remote server over HTTP or WebSocket, signing in with OAuth when it asks.
    Connect(Box<mcp_expose::connect::ConnectOptions>),
    /// Print a shell completion script: `mcp-expose completions bash > /etc/bash_completion.d/mcp-expose`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory as _;
        use std::io::Write as _;
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "mcp-expose", &mut script);
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        let _ = std::io::stdout().lock().write_all(&script);
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(cli.threads))
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mcp-expose: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Connect(options) => mcp_expose::connect::run(*options).await,
            Command::Bridge(options) => mcp_expose::cli::bridge::run(*options).await,
            Command::Gateway(options) => mcp_expose::cli::gateway::run(*options).await,
            Command::Completions { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the message, each cause once, and what to do.
            eprintln!("mcp-expose: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
